/** Users, access tokens, browser sessions and signup, as JSON. */
import express from 'express';
import type { Ctx } from '../domain/context.js';
import * as users from '../domain/users.js';
import { addressOf, countSignupAttempt, login, signup } from '../domain/signin.js';
import * as s from '../http/schemas.js';
import { actorOf, endSession, requireAdmin, requireSignedIn, startSession, type Authed, type WebRequest } from '../http/auth.js';
import { projectView, userDetailView, userView } from './views.js';

export function peopleRoutes(ctx: Ctx): express.Router {
  const r = express.Router();

  r.get('/users', requireAdmin, (req: Authed, res) => {
    res.json({ users: users.listUsers(ctx, actorOf(req)).map(userView) });
  });
  r.post('/users', requireAdmin, async (req: Authed, res) => {
    const b = s.createUserBody.parse(req.body);
    const { user, accessToken } = await users.createUser(ctx, actorOf(req), b);
    // The access token is what Subversion and Trac take as the password; it is shown only now.
    res.status(201).json({ ...userView(user), accessToken });
  });
  r.post('/users/:name/access-token', requireSignedIn, (req: Authed, res) => {
    const { name } = s.userParams.parse(req.params);
    // The old token stops working on the next request.
    res.status(201).json({ name, accessToken: users.rotateAccessToken(ctx, actorOf(req), name) });
  });
  // One account with its project allowance: an operator, or the user themselves.
  r.get('/users/:name', requireSignedIn, (req: Authed, res) => {
    const { name } = s.userParams.parse(req.params);
    res.json(userDetailView(users.userDetail(ctx, actorOf(req), name)));
  });
  r.patch('/users/:name', requireAdmin, (req: Authed, res) => {
    const { name } = s.userParams.parse(req.params);
    res.json(userDetailView(users.updateUser(ctx, actorOf(req), name, s.userPatchBody.parse(req.body))));
  });

  // Sessions for the web UI and scripts that sign in as a user.
  r.get('/session', (req: WebRequest, res) => {
    const a = req.actor;
    res.json({ user: a?.kind === 'user' ? { name: a.user, admin: a.admin } : null, csrfToken: req.csrfToken });
  });
  r.post('/session', async (req: WebRequest, res) => {
    const b = s.loginBody.parse(req.body);
    const user = await login(ctx, b.username, b.password, addressOf(req));
    if (req.webCookies?.keelson_session) endSession(ctx, req, res);
    startSession(ctx, req, res, user.id);
    res.status(201).json({ user: { name: user.name, admin: !!user.is_admin }, csrfToken: req.csrfToken });
  });
  r.delete('/session', (req: WebRequest, res) => {
    endSession(ctx, req, res);
    res.status(204).end();
  });
  r.post('/signup', async (req: WebRequest, res) => {
    countSignupAttempt(ctx, addressOf(req));
    const b = s.signupBody.parse(req.body);
    const out = await signup(ctx, b, addressOf(req));
    startSession(ctx, req, res, out.user.id);
    res.status(201).json({
      csrfToken: req.csrfToken,
      user: userView(out.user),
      accessToken: out.accessToken,
      project: out.project ? projectView(ctx, out.project) : null,
    });
  });
  return r;
}
