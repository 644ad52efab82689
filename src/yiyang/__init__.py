"""yiyang (医养): community medical-and-elderly care for Chinese districts."""

__version__ = "0.1.0"
