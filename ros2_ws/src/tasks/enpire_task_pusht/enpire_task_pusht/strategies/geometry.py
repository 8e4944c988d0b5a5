"""Piece `geometry`: the T in its body frame, candidate contacts, a coverage estimate, segment clearance.

Parameters:
    samples_per_edge  contact points sampled on each of the T's 8 edges (more: finer choice, slower)
"""
PARAMS = {
    'samples_per_edge': (5, 3, 9, 'int', 'contact points sampled per edge of the T outline'),
}

SOURCE = r'''
R = 15.0
OUTLINE = np.array([(-60.0, 0.0), (60.0, 0.0), (60.0, 30.0), (15.0, 30.0), (15.0, 120.0),
                    (-15.0, 120.0), (-15.0, 30.0), (-60.0, 30.0)])
HULL = np.array([(-60.0, 0.0), (60.0, 0.0), (60.0, 30.0), (15.0, 120.0), (-15.0, 120.0), (-60.0, 30.0)])
COM = np.array([0.0, 45.0])       # gym-pusht's centre of gravity (mean of the two boxes' centroids)
MASS = 1.0
INERTIA = 2550.0                  # as gym-pusht builds it (twice the bar's moment)
GOAL = (256.0, 256.0, math.pi / 4)
LO, HI = 5.0 + 2.0 + R + 1.0, 506.0 - 2.0 - R - 1.0


def rot(th):
    c, s = math.cos(th), math.sin(th)
    return np.array([[c, -s], [s, c]])


def to_world(pts, pose):
    return np.asarray(pts) @ rot(pose[2]).T + np.array(pose[:2])


def wrap(a):
    return (a + math.pi) % (2 * math.pi) - math.pi


def inside_local(p):
    x, y = p[..., 0], p[..., 1]
    return ((np.abs(x) < 60) & (y > 0) & (y < 30)) | ((np.abs(x) < 15) & (y >= 30) & (y < 120))


def _contacts():
    """Candidate contacts in the block frame: points on the outline and their outward normals."""
    pts, normals = [], []
    n = len(OUTLINE)
    concave = {3, 6}
    for i in range(n):
        a, b = OUTLINE[i], OUTLINE[(i + 1) % n]
        e = b - a
        length = float(np.hypot(*e))
        u = e / length
        nout = np.array([u[1], -u[0]])
        m0 = R + 1.0 if i in concave else 3.0
        m1 = R + 1.0 if (i + 1) % n in concave else 3.0
        for t in np.linspace(m0, length - m1, int(PARAMS['samples_per_edge'])):
            pts.append(a + u * t)
            normals.append(nout)
    pts, normals = np.array(pts), np.array(normals)
    if inside_local(pts + normals * 0.5).mean() > 0.5:
        normals = -normals
    return pts, normals


C_PTS, C_NRM = _contacts()
_g = np.mgrid[-60:60:3.0, 0:120:3.0].reshape(2, -1).T + 1.5
_GOAL_SAMPLES = to_world(_g[inside_local(_g)], GOAL)


def est_coverage(pose):
    """Share of goal sample points inside the T at `pose` (about the reference coverage)."""
    local = (_GOAL_SAMPLES - np.array(pose[:2])) @ rot(pose[2])
    return float(inside_local(local).mean())


def seg_dist_to_poly(a, b, poly):
    """Min distance from each segment a[i]->b[i] to the polygon's edges (0 when they cross)."""
    a = np.atleast_2d(a)[:, None, :]
    b = np.atleast_2d(b)[:, None, :]
    p = poly[None, :, :]
    q = np.roll(poly, -1, axis=0)[None, :, :]

    def pt_seg(x, s0, s1):
        d = s1 - s0
        t = np.clip(np.sum((x - s0) * d, -1) / np.maximum(np.sum(d * d, -1), 1e-9), 0, 1)
        return np.linalg.norm(s0 + t[..., None] * d - x, axis=-1)

    d = np.minimum(np.minimum(pt_seg(a, p, q), pt_seg(b, p, q)),
                   np.minimum(pt_seg(p, a, b), pt_seg(q, a, b)))

    def cross(o, u, v):
        du, dv = u - o, v - o
        return du[..., 0] * dv[..., 1] - du[..., 1] * dv[..., 0]

    inter = (cross(a, b, p) * cross(a, b, q) < 0) & (cross(p, q, a) * cross(p, q, b) < 0)
    return np.where(inter, 0.0, d).min(axis=1)
'''
