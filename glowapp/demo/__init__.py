"""The web demo, ``glowapp demo [--ckpt P]``: sample, interpolate, inpaint, manipulate and score in a browser.

Needs the ``demo`` extra (``pip install 'glowapp[demo]'``: Gradio, and scikit-image for the
example photos). :mod:`~glowapp.demo.handlers` turns form values into images with
:mod:`glowapp.generate` and does not import Gradio; :mod:`~glowapp.demo.app` lays out the page and
serves it; :mod:`~glowapp.demo.examples` writes the example photos.
"""
