"""Dance videos -> clips: manifests, download, video cutting, 3D pose, quality checks, build.

Submodules are imported on use (mediapipe and OpenCV load only when poses are estimated).
"""
