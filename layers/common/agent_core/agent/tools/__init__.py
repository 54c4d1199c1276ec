"""Tools the model may call, one module each; `base` holds the contract they share."""
