"""``perago bench``: benchmark scenarios measured against baselines in the same run."""
