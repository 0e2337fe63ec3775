"""Sample quality and cost: the evaluator classifier, metrics, evaluation runs, eval.json records, NFE."""
