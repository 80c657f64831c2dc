"""Evaluation at the production prior: everything the evaluate stage computes after scoring.

The stage (``stages/evaluate.py``, through ``run``) scores ``dev_a``, ``dev_b`` and
``test`` once; everything else here is a pure function of the predictions table
(``example_id, split, group, label, weight, score, probability``):

- ``sample`` metrics count examples as they are in the split;
- ``prior`` metrics weight them (manifest weights, negatives rescaled so the
  weighted positive fraction equals the production prior). For the thinned
  ``dev_a`` this is a projection; ``dev_b`` and ``test`` are production-ratio
  data, so it is a measurement;
- ``probability`` is the score mapped to the production prior with the
  ``beta`` recorded by train (Dal Pozzolo / Elkan);
- the threshold minimises expected cost on ``dev_b`` at the prior and is applied
  unchanged to every split; the Bayes threshold ``c_FP / (c_FP + c_FN)`` is
  reported beside it;
- group-level bootstrap intervals on ``dev_a`` (the projection) and ``test``;
- where examples carry a gold label (``true_label``, null where nobody labelled
  the example), the same metrics against gold on the gold-labelled examples
  only (``{split}.gold``), at the gold-label production prior, and the label
  noise of the distant labels (``{split}.label_noise``). The threshold may be
  chosen against gold instead (``evaluate.threshold_labels: gold``).

One module per concept, in the order the stage uses them:

- ``config``: the ``evaluate`` params section and its validation;
- ``inputs``: the evaluated manifest rows, the production priors, the predictions table;
- ``measures``: one split in one view: its weights, a rule's metrics, threshold-free
  scores, group-bootstrap intervals (a new metric goes here);
- ``gold``: gold labels against the distant ones: gold metrics and label noise;
- ``metrics``: metrics.json's thresholds, splits, rules and intervals, and the prior
  sensitivity;
- ``recalibration``: the recalibration chosen on dev_b and the calibration quality;
- ``label_free``: what the label-free estimate would have said on each batch;
- ``plots``: the records of each ``dvc plots`` picture;
- ``report``: report.md, in markdown;
- ``pipeline``: all of it wired, from the predictions table to metrics, plots and report.
- ``run``: the stage's work around it: the model scores the rows, the prior is chosen,
  the outputs are written (``evaluate_model``).
"""
