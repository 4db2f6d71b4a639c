"""Code actions: quick fixes for the editor's diagnostics and rewrites of a definition,
planned without the model (``plan``) and run through it when picked (``rewrite``)."""
