"""The pipeline's entry points: one module per ``dvc.yaml`` stage, plus the ``score`` and
``generate`` commands. Each is a thin ``main()``; the work is in the ``dsprior`` library."""
