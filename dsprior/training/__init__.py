"""Training the model: the pieces ``stages/train.py`` runs, one concept per module.

- ``params``: the ``train`` section of params.yaml, every key checked (no TensorFlow);
- ``weights``: balancing, per-example loss weights, beta and the training prior;
- ``scores``: the numbers the curves record, and scoring ``dev_a`` during training;
- ``stream``: the seeded, resumable stream of training batches;
- ``strategy``: where training runs (tf.distribute strategies, precision, oneDNN) and
  the Keras workarounds those need, so that a Keras upgrade touches one file;
- ``resume``: which backup a run resumes from;
- ``curves``: DVCLive's curve files, saved with the backup and replayed on resume;
- ``callback``: the Keras callback that logs curves, evaluates ``dev_a`` and keeps the best;
- ``loop``: ``train_model``, the training run that puts the pieces together.

Importing this package imports none of them.
"""
