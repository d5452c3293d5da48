"""tinynet and the ecosystem: the same network in PyTorch (a second gradient oracle) and in ONNX (for inference
elsewhere). Importing tinynet never imports torch or onnx: each is imported by its own module, when used."""
