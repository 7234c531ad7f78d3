"""Image and video files, optical flow, temporal blending, atomic writes."""
