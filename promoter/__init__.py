"""promoter: GitOps promotion of TensorFlow models, dev -> staging -> prod, with proof."""

__version__ = "0.1.0"
