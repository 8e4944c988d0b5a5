"""Piece `push`: the state machine (select -> approach -> push -> retreat) and the push primitive.

The push target is placed relative to the agent (agent + d * lead, plus the lateral offset to the
contact's disc centre), so a biased pose estimate never leaves the agent commanding a point it
already occupies. A stroke ends when its contact stops helping (cosine below switch_cos, or another
contact better by the hysteresis), when the agent stalls (moved < stall_px for stall_steps steps:
stuck against a wall or the estimate is off), or, in fine mode, after its planned length; stalled and
fine strokes retreat retreat_px along the normal before re-selecting.

Parameters:
    push_gain, push_min, push_max  lead (px) of the target into the T: gain x predicted best stroke,
                                   clipped to [push_min, push_max] (speed of the push)
    switch_cos                     a stroke ends when its cosine drops below this
    stall_px, stall_steps          stall detection
    retreat_px, retreat_steps      the retreat after a stalled or fine stroke
"""
PARAMS = {
    'push_gain': (0.8, 0.2, 2.0, 'float', 'lead = gain x predicted best stroke'),
    'push_min': (1.5, 0.5, 5.0, 'float', 'minimum lead (px)'),
    'push_max': (25.0, 5.0, 60.0, 'float', 'maximum lead (px): push speed'),
    'switch_cos': (0.35, 0.05, 0.8, 'float', 'end a stroke below this cosine'),
    'stall_px': (0.3, 0.05, 1.5, 'float', 'stall: agent moved less than this per step'),
    'stall_steps': (4, 2, 12, 'int', 'stall: for this many steps'),
    'retreat_px': (12.0, 4.0, 30.0, 'float', 'retreat distance after a stroke'),
    'retreat_steps': (2, 1, 6, 'int', 'control steps spent retreating'),
}

SOURCE = r'''
class Policy:
    def reset(self, context):
        self.pose = None
        self.mode = 'select'
        self.contact = None
        self.path = []
        self.goal = GOAL
        self.t = 0
        self.stroke = None
        self.last_agent = None
        self.retreat_left = 0
        self.retreat_target = None
        self.dither_scale = 1.0
        self.fine_scale = 1.0

    def on_attempt_failed(self, report):
        self.mode = 'select'
        self.path = []
        self.stroke = None
        feedback(self, report)

    def act(self, obs):
        agent = np.asarray(obs.agent_position, dtype=float)
        pose = perceive(self, obs, agent)
        if pose is None:
            return (float(agent[0]), float(agent[1]))
        self.t += 1
        cov = est_coverage(pose)
        self.goal = goal_for(self, cov)
        if self.mode == 'retreat':
            self.retreat_left -= 1
            if self.retreat_left <= 0:
                self.mode = 'select'
            self.last_agent = agent
            return (float(self.retreat_target[0]), float(self.retreat_target[1]))
        out = self._act(pose, agent, cov)
        self.last_agent = agent
        return out

    def _go(self, pose, agent):
        pre, nrm = precontact(pose, [self.contact], PARAMS['standoff'])
        self.path = plan_path(pose, agent, pre[0], nrm[0])
        self.mode = 'approach'
        self.stroke = None

    def _act(self, pose, agent, cov):
        if self.mode == 'select':
            self.contact, _ = select_contact(pose, self.goal, agent, self.contact)
            self._go(pose, agent)
        if self.mode == 'approach':
            pre, _ = precontact(pose, [self.contact], PARAMS['standoff'])
            pre = pre[0]
            if not self.path:
                self.path = [pre]
            self.path[-1] = pre
            while len(self.path) > 1 and np.linalg.norm(self.path[0] - agent) < PARAMS['waypoint_tol']:
                self.path.pop(0)
            if len(self.path) == 1 and np.linalg.norm(pre - agent) < PARAMS['arrive_tol']:
                self.mode = 'push'
                self.stroke = None
            else:
                return (float(self.path[0][0]), float(self.path[0][1]))
        return self._push(pose, agent, cov)

    def _push(self, pose, agent, cov):
        goal = self.goal
        eth = wrap(goal[2] - pose[2])
        g = pose_error(pose, goal)
        m = contact_motions(pose, [self.contact], eth)[0]
        mg = float(m @ g)
        cos = mg / (np.linalg.norm(m) * np.linalg.norm(g) + 1e-9)
        s = mg / float(m @ m)
        cpt, nrm = precontact(pose, [self.contact], 0.0)
        cpt, nrm = cpt[0], nrm[0]
        d = -nrm
        if self.stroke is None:
            self.stroke = {'start': agent.copy(), 's0': s, 'fine': fine_active(self, cov), 'stall': 0}
        st = self.stroke
        moved = float(np.linalg.norm(agent - self.last_agent)) if self.last_agent is not None else 9.0
        st['stall'] = st['stall'] + 1 if moved < PARAMS['stall_px'] else 0
        pushed = float((agent - st['start']) @ d)
        best, bcos = select_contact(pose, goal, agent, self.contact)
        end = cos < PARAMS['switch_cos'] or (best != self.contact and bcos > cos + PARAMS['hysteresis'])
        stalled = st['stall'] >= int(PARAMS['stall_steps'])
        fine_done = st['fine'] and pushed >= PARAMS['standoff'] + max(PARAMS['fine_gain'] * st['s0'],
                                                                      PARAMS['fine_min'])
        if stalled or fine_done or (end and st['fine']):
            self.stroke = None
            self.mode = 'retreat'
            self.retreat_left = int(PARAMS['retreat_steps'])
            self.retreat_target = agent + nrm * PARAMS['retreat_px']
            return (float(self.retreat_target[0]), float(self.retreat_target[1]))
        if end:
            self.contact = best
            self._go(pose, agent)
            return (float(self.path[0][0]), float(self.path[0][1]))
        lead = float(np.clip(PARAMS['push_gain'] * s, PARAMS['push_min'], PARAMS['push_max']))
        if st['fine']:
            lead = min(lead, PARAMS['fine_lead'])
        rel = cpt + nrm * R - agent
        tgt = agent + d * lead + (rel - d * float(rel @ d))
        return (float(tgt[0]), float(tgt[1]))
'''
