"""Figure functions used by sample and prediction callbacks."""
