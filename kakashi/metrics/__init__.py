"""Dance metrics: the field's (FID_k, FID_g, Div_k, Div_g, BAS, PFC) and ours (speed, jerk,
bone-length variation, foot skating, frozen-pose share, and whether the body stays a human
one: anatomy, balance, distance to real poses, drift over minutes), over poses [T, 17, 3] in
metres, y up, H36M-17 order, at any fps given as an argument.

Sub-modules, one concern each: `motion` (per-dance statistics and PFC), `kinetic` and
`geometric` (the per-dance feature vectors), `distribution` (FID, diversity), `beats` (BAS),
`anatomy` (per-frame checks of joints, torso, head height, support), `pose_distance` (nearest
reference pose), `drift` (any per-frame metric per minute), `registry` (METRICS and
`evaluate_dances`).

Where this code differs from the reference implementations, and why:
- Kinetic features (aistplusplus_api features/kinetic.py, copied by Bailando). Their
  average-acceleration helper computes v1 = p[i] - p[i-1] / frame_time (only one term
  divided): constant 1 m/s motion then shows an energy expenditure of thousands of m/s^2
  that grows with the distance from the origin. Here v and a are finite differences over the
  real frame time (1 / fps, not a hard-coded 1/60), so constant velocity gives exactly 0 and
  translation and rotation about the vertical change nothing. Their window of five frame steps
  becomes 5/60 s of real time, centred on each frame, with positions between frames
  interpolated linearly (a rounded frame count would measure 67 ms at 30 fps, not 83 ms):
  resampling 30 -> 24 / 60 / 120 fps moves the energies of real mocap by under 1 %.
  17 joints -> 51 dims instead of 72.
- Geometric features (aistplusplus_api features/manual.py; Bailando manual_new.py). Same
  32 relation kinds and threshold multiples, adapted to H36M-17: toes -> ankles, the SMPL
  neck -> thorax, chest -> spine, belly -> hip. Their directions are taken from planes through
  joints, which makes some mirror pairs test opposite directions (one wrist "backward", the
  other "forward"); here forward/up/left come from the body (hip->thorax, r_hip->l_hip), so
  each pair is a true mirror. Their body dimensions are constants of one SMPL template; here
  they are the dance's own median humerus length, shoulder and hip width, so the thresholds
  scale with the performer. Their speed thresholds use time_per_frame = 1/120 on 60 fps data
  (speeds read twice too high); here speeds use the real frame time.
- FID: z-scored with the reference set's statistics (mint, Bailando), but a feature constant
  over the reference is only centred (their std + 1e-10 turns any difference into ~1e10);
  tr sqrt(C1 C2) comes from the eigenvalues of the symmetric C1^1/2 C2 C1^1/2, exact for
  singular covariances (fewer dances than dimensions) and never complex, instead of
  scipy's sqrtm with an epsilon retry.
- Diversity: Bailando's mean pairwise distance of normalised features; the generated set is
  z-scored with the reference's statistics when one is given, otherwise with its own.
- BAS: sigma in seconds (0.05 s = FACT's and Bailando's 3 frames at 60 fps; at EDGE's 30 fps
  the same 3 frames would be 0.1 s). Motion beats at the speed samples' true times
  ((k + 0.5) / fps), Gaussian smoothing of 5/60 s (Bailando's 5 frames at 60 fps), and a
  flat-bottomed minimum counts once (scipy's argrelextrema drops it). Only music beats within
  the dance count. Both averaging directions are given: "motion" (FACT) and "music" (Bailando).
  A stagnant pose with jitter has many random speed minima, so BAS alone cannot reveal the
  paper's failure: read it with frozen_share and jerk.
- PFC (EDGE eval/eval_pfc.py): y up instead of z, any fps (foot speeds converted to metres
  per 1/30 s, EDGE's frame, so 30 fps data scores as in EDGE), ankles instead of the min over
  ankle and toe. A root that never accelerates (a root-relative dance) scores 0 instead of NaN.
- Ours: speed is root-relative (so root-relative generated dances compare with global ground
  truth); jerk in m/s^3; foot contact = ankle within 5 cm of the floor, the floor being the
  1st percentile of ankle heights (AIST++'s floor is not at y = 0); frozen = within 3 cm
  mean per-joint distance of the dance's mean root-relative pose; calm = the joints' speed
  relative to the hip, averaged over 2 s, below 0.12 m/s (a dance moves them at about 0.25),
  whose share and longest stretch tell a dancer who pauses from one who stands for half a song.
"""
from .anatomy import (CHECKS, LIMITS, Limits, anatomy_per_minute, checks, frame_series, plausible,
                      plausible_share, summary)
from .beats import beat_alignment, motion_beats
from .drift import drift, per_minute
from .distribution import diversity, fid, fid_terms, frechet_distance, normalise, spread_between
from .geometric import GEOMETRIC_NAMES, body_dimensions, geometric_features, geometric_relations
from .kinetic import KINETIC_NAMES, kinetic_features
from .motion import (CONTACT_HEIGHT, FROZEN_DISTANCE, body_speed, bone_cv, calm_loudness, calm_share, calm_steps,
                     check_dance, facing_share, foot_contacts, foot_skating, frozen_share, heading, jerk, longest_calm, pfc)
from .pose_distance import feature_distance, pose_distance, pose_features, reference_distance, sample_features
from .registry import METRICS, DanceSet, Metric, dance_metrics, dance_set, evaluate_dances, get_metric

__all__ = [
    "CHECKS", "LIMITS", "Limits", "anatomy_per_minute", "checks", "frame_series", "plausible", "plausible_share",
    "summary", "drift", "per_minute",
    "feature_distance", "pose_distance", "pose_features", "reference_distance", "sample_features",
    "beat_alignment", "motion_beats", "diversity", "fid", "fid_terms", "frechet_distance", "normalise",
    "spread_between",
    "GEOMETRIC_NAMES", "body_dimensions", "geometric_features", "geometric_relations",
    "KINETIC_NAMES", "kinetic_features", "CONTACT_HEIGHT", "FROZEN_DISTANCE", "body_speed",
    "bone_cv", "calm_loudness", "calm_share", "calm_steps", "check_dance", "facing_share", "heading", "foot_contacts",
    "foot_skating", "frozen_share", "jerk", "longest_calm", "pfc",
    "METRICS", "DanceSet", "Metric", "dance_metrics", "dance_set", "evaluate_dances", "get_metric",
]
