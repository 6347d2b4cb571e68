"""Kakashi: dance from music. 3D skeletons (17 Human3.6M joints, 24 fps) from any music file."""
__version__ = "0.1.0"
