"""What a physician does to a case, one module per group (opening, segmenting, explaining, editing,
review, exporting, models, store cases, segmentation files). Each action is a function taking
plain data plus ``progress``/``cancel`` and raising DelineateError with a message the user can act
on; functions named ``*_request`` snapshot the session on the UI thread so the work can run in a
worker while editing goes on. Kept free of imports so that importing one action loads nothing else."""
