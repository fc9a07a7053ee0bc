//! Per-run state of the engine: `$var` slots, `$rc`, and values detached into the scratch
//! buffer while a nested evaluation needs the [`super::Env`] again.
use super::pv::VarId;
use super::value::Value;
use std::borrow::Cow;
use std::cell::{Cell, RefCell};

/// A value detached from the [`super::Env`]: strings live in the scratch buffer.
#[derive(Clone, Copy)]
pub(super) enum Held {
    /// `Value::Null`
    Null,
    /// `Value::Int`
    Int(i64),
    /// A string at this byte range of the scratch buffer.
    Str(usize, usize),
}

impl Held {
    pub(super) fn view(self, scratch: &str) -> Value<'_> {
        match self {
            Held::Null => Value::Null,
            Held::Int(n) => Value::Int(n),
            Held::Str(a, b) => Value::Str(Cow::Borrowed(scratch.get(a..b).unwrap_or(""))),
        }
    }
}

pub(super) fn hold_value(v: &Value<'_>, scratch: &mut String) -> Held {
    match v {
        Value::Null => Held::Null,
        Value::Int(n) => Held::Int(*n),
        Value::Str(s) => {
            let a = scratch.len();
            scratch.push_str(s);
            Held::Str(a, scratch.len())
        }
    }
}

/// `$var` storage and `$rc`, per run. Slots keep their string buffers across runs.
#[derive(Debug, Default)]
pub(crate) struct Vars {
    slots: Vec<Slot>,
    /// `$rc`: set through shared references while an expression runs.
    pub(super) retcode: Cell<i64>,
    /// `$var`s a function's output argument set while an expression ran (shared
    /// references): stored by [`Vars::flush`] once the statement or condition is done.
    pending: RefCell<Vec<(VarId, String)>>,
}

#[derive(Debug, Default)]
struct Slot {
    state: SlotState,
    int: i64,
    text: String,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
enum SlotState {
    #[default]
    Null,
    Int,
    Str,
}

impl Vars {
    pub(super) fn get(&self, id: VarId) -> Value<'_> {
        match self.slots.get(id.0 as usize) {
            Some(s) if s.state == SlotState::Int => Value::Int(s.int),
            Some(s) if s.state == SlotState::Str => Value::Str(Cow::Borrowed(&s.text)),
            _ => Value::Null,
        }
    }

    pub(super) fn set(&mut self, id: VarId, v: Value<'_>) {
        let i = id.0 as usize;
        if self.slots.len() <= i {
            if v.is_null() {
                return;
            }
            self.slots.resize_with(i + 1, Slot::default);
        }
        let Some(slot) = self.slots.get_mut(i) else {
            return;
        };
        match v {
            Value::Null => slot.state = SlotState::Null,
            Value::Int(n) => {
                slot.state = SlotState::Int;
                slot.int = n;
            }
            Value::Str(s) => {
                slot.state = SlotState::Str;
                slot.text.clear();
                slot.text.push_str(&s);
            }
        }
    }

    pub(crate) fn reset(&mut self) {
        for s in &mut self.slots {
            s.state = SlotState::Null;
        }
        self.retcode.set(0);
        self.pending.get_mut().clear();
    }

    /// Queue `$var(id) = text` for the next [`Vars::flush`].
    pub(super) fn set_later(&self, id: VarId, text: String) {
        self.pending.borrow_mut().push((id, text));
    }

    /// Store the queued writes, in order (after every statement and condition: inlined, the
    /// common case being nothing queued).
    #[inline]
    pub(super) fn flush(&mut self) {
        if !self.pending.get_mut().is_empty() {
            self.flush_pending();
        }
    }

    #[cold]
    fn flush_pending(&mut self) {
        let pending = std::mem::take(self.pending.get_mut());
        for (id, text) in &pending {
            self.set(*id, Value::Str(Cow::Borrowed(text)));
        }
        // Keep the allocation for the next run.
        let mut p = pending;
        p.clear();
        *self.pending.get_mut() = p;
    }
}
