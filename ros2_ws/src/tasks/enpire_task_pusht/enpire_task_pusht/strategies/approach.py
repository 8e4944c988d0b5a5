"""Piece `approach`: how the agent travels to the pre-contact point without disturbing the T.

Variants:
    direct  straight to a point `approach_back` px out along the contact normal, then in (it drags
            the T whenever the straight line crosses it: the naive start)
    graph   shortest path through a visibility graph of points around the T's convex hull padded by
            the agent radius + clear_margin; segments keep that clearance from the T's real outline
Parameters:
    standoff       gap (px) between the agent disc and the T at the pre-contact point
    clear_margin   extra clearance (px) kept while travelling around the T
    approach_back  (direct) distance of the staging point out along the normal
    waypoint_tol   distance at which a waypoint counts as reached
    arrive_tol     distance at which the pre-contact point counts as reached
"""
PARAMS = {
    'standoff': (4.0, 1.0, 10.0, 'float', 'gap between disc and T at the pre-contact point'),
    'clear_margin': (6.0, 2.0, 20.0, 'float', 'extra clearance when travelling around the T'),
    'approach_back': (30.0, 10.0, 80.0, 'float', 'direct: staging distance out along the normal'),
    'waypoint_tol': (10.0, 4.0, 25.0, 'float', 'waypoint reached within this distance'),
    'arrive_tol': (4.0, 1.5, 10.0, 'float', 'pre-contact reached within this distance'),
}

VARIANTS = {
    'direct': r'''
def plan_path(pose, start, goal, normal=None):
    if normal is None:
        return [goal]
    return [goal + normal * PARAMS['approach_back'], goal]
''',
    'graph': r'''
def plan_path(pose, start, goal, normal=None):
    poly = to_world(OUTLINE, pose)
    clear = R + PARAMS['clear_margin'] * 0.5
    ends = np.array([start, goal])
    pd = seg_dist_to_poly(ends, ends, poly)
    if seg_dist_to_poly(start, goal, poly)[0] >= min(clear, pd.min() - 1.0):
        return [goal]
    hull = to_world(HULL, pose)
    c = to_world(COM[None], pose)[0]
    rho = R + PARAMS['clear_margin'] + 2.0
    nodes = []
    for i in range(len(hull)):
        v, vp, vn = hull[i], hull[i - 1], hull[(i + 1) % len(hull)]
        e1, e2 = v - vp, vn - v
        n1 = np.array([e1[1], -e1[0]]) / np.linalg.norm(e1)
        n2 = np.array([e2[1], -e2[0]]) / np.linalg.norm(e2)
        if np.dot(n1, v - c) < 0:
            n1, n2 = -n1, -n2
        bis = (n1 + n2) / np.linalg.norm(n1 + n2)
        for nn in (n1, bis, n2):
            nodes.append(v + rho * nn)
    nodes = np.clip(np.array(nodes), LO, HI)
    allp = np.vstack([start[None], goal[None], nodes])
    n = len(allp)
    ii, jj = np.triu_indices(n, 1)
    dd = seg_dist_to_poly(allp[ii], allp[jj], poly)
    need = np.full(len(ii), clear)
    for e in (0, 1):
        sel = (ii == e) | (jj == e)
        need[sel] = np.minimum(need[sel], pd[e] - 1.0)
    vis = np.zeros((n, n), bool)
    vis[ii, jj] = dd >= need
    vis = vis | vis.T
    w = np.where(vis, np.linalg.norm(allp[:, None] - allp[None], axis=-1), np.inf)
    dist = np.full(n, np.inf)
    prev = np.full(n, -1)
    dist[0] = 0.0
    done = np.zeros(n, bool)
    for _ in range(n):
        u = int(np.argmin(np.where(done, np.inf, dist)))
        if not np.isfinite(dist[u]) or u == 1:
            break
        done[u] = True
        nd = dist[u] + w[u]
        better = nd < dist
        dist[better] = nd[better]
        prev[better] = u
    if not np.isfinite(dist[1]):
        return [goal]
    path, u = [], 1
    while u not in (0, -1):
        path.append(allp[u])
        u = prev[u]
    return path[::-1]
''',
}
