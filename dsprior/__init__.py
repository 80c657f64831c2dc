"""dsprior: distant-supervision classification measured at the production prior.

The library the pipeline's stages call (``stages/``: one thin entry point per ``dvc.yaml``
stage). Importing it runs nothing: each entry point's ``main()`` sets up logging and
TensorFlow before it calls in.
"""
