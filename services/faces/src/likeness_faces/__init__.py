"""Likeness faces service: face detection, landmarks, head pose and quality for portraits."""

import os

# torch runs its CPU kernels on OpenMP workers, and an idle worker spins for its next task by
# default. Beside the rest of the mesh on a few cores (or on any busy machine) the spinning worker
# holds the core the other worker needs: one MTCNN detection then took about 8x the CPU (35 ms with
# sleeping workers, 240-360 ms spinning, measured on a loaded 2-core machine). Sleeping workers keep
# the speed-up of two threads when the cores are free. It must be set before torch loads its OpenMP
# runtime, so here, before any module of the service imports torch; an operator's own value wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
