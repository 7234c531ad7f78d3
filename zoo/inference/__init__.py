"""Making pictures: the verified loader, the Stylizer, the fast forward, video frames, export, Gatys runs."""
