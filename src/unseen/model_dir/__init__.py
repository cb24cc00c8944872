"""Self-contained model directories (`unseen export`, `GZSLModel.save_pretrained`)."""
