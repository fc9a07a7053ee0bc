//! The interpreter: walks the resolved tree for one message.
//!
//! No name lookups and, after the per-thread [`RunState`] has warmed up, no allocation:
//! strings that must outlive a nested evaluation (the left side of `$a == $b`, function
//! arguments, xlog text) are copied into one scratch buffer used as a stack, and comparisons
//! against a constant (`$si == "1.2.3.4"`) borrow the value straight from the [`Env`].
use super::func::FuncId;
use super::pv::Pv;
use super::state::{hold_value, Held, Vars};
use super::tree::{CArg, CExpr, CallNode, Format, Node, Segment};
use super::value::{add, compare, sub, LogLevel, Value};
use super::{Env, Outcome, RouteRef, RunState, Script};
use smallvec::SmallVec;
use std::fmt::Write as _;

/// Nesting limit of `route()` calls, the top route included (OpenSIPS: ROUTE_MAX_REC_LEV).
pub const MAX_ROUTE_DEPTH: u32 = 100;

/// How a statement list ended.
enum Flow {
    Next,
    Return(i64),
    Exit,
    Drop,
}

/// A function returned 0, which stops the script as `exit` does (OpenSIPS semantics).
struct Stop;

fn pv_value<'a, E: Env>(pv: &'a Pv, env: &'a mut E, vars: &'a Vars) -> Value<'a> {
    match pv {
        Pv::Var(id) => vars.get(*id),
        Pv::RetCode => Value::Int(vars.retcode.get()),
        _ => env.pv_get(pv),
    }
}

fn render<E: Env>(fmt: &Format, env: &mut E, vars: &Vars, out: &mut String) {
    for seg in fmt.segs.iter() {
        match seg {
            Segment::Lit(s) => out.push_str(s),
            Segment::Pv(pv) => pv_value(pv, env, vars).write_to(out),
        }
    }
}

impl Script {
    /// Run `route` from its first statement.
    pub(crate) fn exec<E: Env>(&self, route: RouteRef, env: &mut E, st: &mut RunState) -> Outcome {
        st.vars.reset();
        st.scratch.clear();
        let Some(r) = self.routes.get(route.0 as usize) else {
            env.log(
                LogLevel::Err,
                "script: no such route (RouteRef from another script?)",
            );
            return Outcome::Drop;
        };
        match self.block(&r.body, env, st, 1) {
            Flow::Next => Outcome::Return(1),
            Flow::Return(n) => Outcome::Return(n),
            Flow::Exit => Outcome::Exit,
            Flow::Drop => Outcome::Drop,
        }
    }

    fn block<E: Env>(&self, nodes: &[Node], env: &mut E, st: &mut RunState, depth: u32) -> Flow {
        for node in nodes {
            let flow = match node {
                Node::If { .. } => self.if_chain(node, env, st, depth),
                Node::Exit => Flow::Exit,
                Node::Drop => Flow::Drop,
                Node::Return(e) => match self.value(e, env, &st.vars, &mut st.scratch) {
                    // As OpenSIPS: NULL returns -1, a non-integer 1, and 0 means exit.
                    Ok(v) => match v.as_int().unwrap_or(if v.is_null() { -1 } else { 1 }) {
                        0 => Flow::Exit,
                        n => Flow::Return(n),
                    },
                    Err(Stop) => Flow::Exit,
                },
                Node::Route { idx, line } => self.call_route(*idx, *line, env, st, depth),
                Node::Call(c) => match self.call_checked(c, env, &st.vars, &mut st.scratch) {
                    Ok(_) => Flow::Next,
                    Err(Stop) => Flow::Exit,
                },
                Node::Assign {
                    pv,
                    value,
                    what,
                    line,
                } => match self.assign(pv, value, env, st) {
                    Ok(Ok(())) => Flow::Next,
                    Ok(Err(msg)) => {
                        if env.log_enabled(LogLevel::Err) {
                            let text =
                                format!("{}:{line}: cannot assign to {what}: {msg}", self.file);
                            env.log(LogLevel::Err, &text);
                        }
                        Flow::Next
                    }
                    Err(Stop) => Flow::Exit,
                },
            };
            st.vars.flush();
            if !matches!(flow, Flow::Next) {
                return flow;
            }
        }
        Flow::Next
    }

    /// An `if` whose `else` is a lone `if` is followed in a loop, not by recursion.
    fn if_chain<E: Env>(
        &self,
        mut node: &Node,
        env: &mut E,
        st: &mut RunState,
        depth: u32,
    ) -> Flow {
        while let Node::If { cond, then, els } = node {
            let truth = self.truth(cond, env, &st.vars, &mut st.scratch);
            st.vars.flush();
            match truth {
                Ok(true) => return self.block(then, env, st, depth),
                Ok(false) => match &**els {
                    [next @ Node::If { .. }] => node = next,
                    _ => return self.block(els, env, st, depth),
                },
                Err(Stop) => return Flow::Exit,
            }
        }
        Flow::Next
    }

    fn call_route<E: Env>(
        &self,
        idx: u16,
        line: u32,
        env: &mut E,
        st: &mut RunState,
        depth: u32,
    ) -> Flow {
        let Some(r) = self.routes.get(idx as usize) else {
            return Flow::Drop;
        };
        if depth >= MAX_ROUTE_DEPTH {
            if env.log_enabled(LogLevel::Err) {
                let name = r.name.as_deref().unwrap_or("");
                let text = format!(
                    "{}:{line}: route({name}): too many nested route() calls (limit {MAX_ROUTE_DEPTH}), dropping the message",
                    self.file
                );
                env.log(LogLevel::Err, &text);
            }
            return Flow::Drop;
        }
        match self.block(&r.body, env, st, depth + 1) {
            Flow::Next => {
                st.vars.retcode.set(1);
                Flow::Next
            }
            Flow::Return(n) => {
                st.vars.retcode.set(n);
                Flow::Next
            }
            other => other,
        }
    }

    /// `$pv = value`; the inner `Err` is the env's refusal.
    fn assign<E: Env>(
        &self,
        pv: &Pv,
        value: &CExpr,
        env: &mut E,
        st: &mut RunState,
    ) -> Result<Result<(), String>, Stop> {
        let mark = st.scratch.len();
        let held = match value {
            CExpr::Const(_) => None,
            _ => Some(self.hold(value, env, &st.vars, &mut st.scratch)?),
        };
        let v = match (held, value) {
            (Some(h), _) => h.view(&st.scratch),
            (None, CExpr::Const(c)) => c.value(),
            (None, _) => Value::Null,
        };
        let res = match pv {
            Pv::Var(id) => {
                st.vars.set(*id, v);
                Ok(())
            }
            _ => env.pv_set(pv, v),
        };
        st.scratch.truncate(mark);
        Ok(res)
    }

    fn hold<E: Env>(
        &self,
        e: &CExpr,
        env: &mut E,
        vars: &Vars,
        scratch: &mut String,
    ) -> Result<Held, Stop> {
        let v = self.value(e, env, vars, scratch)?;
        Ok(hold_value(&v, scratch))
    }

    /// The value of an expression; strings may borrow from the env, the variables or the tree.
    fn value<'a, E: Env>(
        &'a self,
        e: &'a CExpr,
        env: &'a mut E,
        vars: &'a Vars,
        scratch: &mut String,
    ) -> Result<Value<'a>, Stop> {
        Ok(match e {
            CExpr::Const(c) => c.value(),
            CExpr::Pv(pv) => pv_value(pv, env, vars),
            CExpr::Add(l, r) => {
                let lv = self.value(l, &mut *env, vars, scratch)?.into_owned();
                add(lv, self.value(r, env, vars, scratch)?)
            }
            CExpr::Sub(l, r) => {
                let lv = self
                    .value(l, &mut *env, vars, scratch)?
                    .as_int()
                    .map_or(Value::Null, Value::Int);
                sub(&lv, &self.value(r, env, vars, scratch)?)
            }
            CExpr::Call(c) => Value::Int(self.call_checked(c, env, vars, scratch)?),
            _ => Value::Int(i64::from(self.truth(e, env, vars, scratch)?)),
        })
    }

    /// The truth of a condition. `&&` and `||` short-circuit.
    fn truth<E: Env>(
        &self,
        e: &CExpr,
        env: &mut E,
        vars: &Vars,
        scratch: &mut String,
    ) -> Result<bool, Stop> {
        Ok(match e {
            CExpr::Const(c) => c.value().truthy(),
            CExpr::Not(x) => !self.truth(x, env, vars, scratch)?,
            CExpr::And(a, b) => {
                self.truth(a, env, vars, scratch)? && self.truth(b, env, vars, scratch)?
            }
            CExpr::Or(a, b) => {
                self.truth(a, env, vars, scratch)? || self.truth(b, env, vars, scratch)?
            }
            CExpr::Call(c) => self.call_checked(c, env, vars, scratch)? > 0,
            CExpr::CmpConst { op, l, c } => {
                let v = self.value(l, env, vars, scratch)?;
                compare(*op, &v, &c.value())
            }
            CExpr::Cmp { op, l, r } => {
                let mark = scratch.len();
                let lh = self.hold(l, env, vars, scratch)?;
                let rv = self.value(r, env, vars, scratch)?;
                let res = compare(*op, &lh.view(scratch), &rv);
                scratch.truncate(mark);
                res
            }
            CExpr::Match { neg, l, re } => {
                let v = self.value(l, env, vars, scratch)?;
                let hit = match &v {
                    Value::Null => false,
                    Value::Str(s) => re.is_match(s),
                    Value::Int(n) => {
                        let mark = scratch.len();
                        let _ = write!(scratch, "{n}");
                        let hit = re.is_match(scratch.get(mark..).unwrap_or(""));
                        scratch.truncate(mark);
                        hit
                    }
                };
                hit != *neg
            }
            CExpr::MatchDyn { neg, l, r } => self.match_dyn(*neg, l, r, env, vars, scratch)?,
            CExpr::Myself { neg, v } => {
                let mark = scratch.len();
                let h = self.hold(v, env, vars, scratch)?;
                let mine = env.is_myself(&h.view(scratch));
                scratch.truncate(mark);
                mine != *neg
            }
            CExpr::Pv(_) | CExpr::Add(..) | CExpr::Sub(..) => {
                self.value(e, env, vars, scratch)?.truthy()
            }
        })
    }

    /// `l =~ r` with a run-time pattern: compiled on each evaluation (the slow path).
    fn match_dyn<E: Env>(
        &self,
        neg: bool,
        l: &CExpr,
        r: &CExpr,
        env: &mut E,
        vars: &Vars,
        scratch: &mut String,
    ) -> Result<bool, Stop> {
        let mark = scratch.len();
        let subject = self.value(l, &mut *env, vars, scratch)?.into_owned();
        let pattern = self.hold(r, env, vars, scratch)?;
        let hit = match (&subject, pattern) {
            (Value::Null, _) | (_, Held::Null) => false,
            (_, p) => {
                let mut text = String::new();
                p.view(scratch).write_to(&mut text);
                match super::compile::build_regex(&text) {
                    Ok(re) => {
                        let mut s = String::new();
                        subject.write_to(&mut s);
                        re.is_match(&s)
                    }
                    Err(msg) => {
                        if env.log_enabled(LogLevel::Err) {
                            env.log(
                                LogLevel::Err,
                                &format!(
                                    "{}: invalid regular expression '{text}': {msg}",
                                    self.file
                                ),
                            );
                        }
                        false
                    }
                }
            }
        };
        scratch.truncate(mark);
        Ok(hit != neg)
    }

    /// Run a call and record `$rc`; 0 stops the script.
    fn call_checked<E: Env>(
        &self,
        c: &CallNode,
        env: &mut E,
        vars: &Vars,
        scratch: &mut String,
    ) -> Result<i64, Stop> {
        let r = self.call(c, env, vars, scratch);
        vars.retcode.set(r);
        if r == 0 {
            return Err(Stop);
        }
        Ok(r)
    }

    fn call<E: Env>(&self, c: &CallNode, env: &mut E, vars: &Vars, scratch: &mut String) -> i64 {
        match c {
            CallNode::Xlog { level, fmt } => {
                if env.log_enabled(*level) {
                    let mark = scratch.len();
                    render(fmt, env, vars, scratch);
                    // `xlog("...\n")`, OpenSIPS's usual form: the newline ends the record,
                    // which is one log line already.
                    let text = scratch.get(mark..).unwrap_or("");
                    env.log(*level, text.trim_end_matches(['\r', '\n']));
                    scratch.truncate(mark);
                }
                1
            }
            CallNode::IsMethod(list) => {
                let m = env.pv_get(&Pv::Method);
                let hit = m
                    .as_str()
                    .is_some_and(|m| list.iter().any(|x| x.eq_ignore_ascii_case(m)));
                if hit {
                    1
                } else {
                    -1
                }
            }
            CallNode::Host { id, args } => self.call_host(*id, args, env, vars, scratch),
        }
    }

    fn call_host<E: Env>(
        &self,
        id: FuncId,
        args: &[CArg],
        env: &mut E,
        vars: &Vars,
        scratch: &mut String,
    ) -> i64 {
        // Constant arguments only (`sanity_check()`, `sl_send_reply(200, "OK")`): nothing to
        // evaluate, hold or store back.
        if args.iter().all(|a| matches!(a, CArg::Const(_))) {
            let vals: SmallVec<[Value<'_>; 4]> = args
                .iter()
                .map(|a| match a {
                    CArg::Const(c) => c.value(),
                    _ => Value::Null,
                })
                .collect();
            return env.call(id, &vals);
        }
        let mark = scratch.len();
        let mut held: SmallVec<[Held; 4]> = SmallVec::new();
        for a in args {
            held.push(match a {
                CArg::Const(_) | CArg::Out(_) => Held::Null,
                CArg::Pv(pv) => hold_value(&pv_value(pv, env, vars), scratch),
                CArg::PvInt(pv) => pv_value(pv, env, vars)
                    .as_int()
                    .map_or(Held::Null, Held::Int),
                CArg::Format(f) => {
                    let a = scratch.len();
                    render(f, env, vars, scratch);
                    Held::Str(a, scratch.len())
                }
            });
        }
        let vals: SmallVec<[Value<'_>; 4]> = args
            .iter()
            .zip(held.iter())
            .map(|(a, h)| match a {
                CArg::Const(c) => c.value(),
                _ => h.view(scratch),
            })
            .collect();
        let r = env.call(id, &vals);
        drop(vals);
        scratch.truncate(mark);
        for (i, a) in args.iter().enumerate() {
            let CArg::Out(pv) = a else { continue };
            let Some(text) = env.take_output(i) else {
                continue;
            };
            match pv {
                Pv::Var(id) => vars.set_later(*id, text),
                _ => {
                    if let Err(e) = env.pv_set(pv, Value::Str(text.into())) {
                        env.log(LogLevel::Err, &format!("cannot store into {pv}: {e}"));
                    }
                }
            }
        }
        r
    }
}
