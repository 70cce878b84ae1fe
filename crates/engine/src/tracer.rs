//! Sampled request traces: the call trees of the first N requests that
//! arrive after the warm-up, with per-call timing as a tracer in the mesh
//! would see it (the caller's sidecar from call start to answer; the
//! callee from the request's arrival at its instance, queueing included, to
//! its response). Off unless asked for: when off, the engine's only cost is
//! one branch per hook.

use std::collections::BTreeMap;

use crate::slab::Ref;

/// One call of a sampled request.
#[derive(Clone, Debug, PartialEq)]
pub struct TracedCall {
    /// Index of the calling call in [`SampledRequest::calls`] (`None` for
    /// the root, which the client makes).
    pub parent: Option<usize>,
    /// The caller's script step that made the call (calls of one step run
    /// in parallel).
    pub group: u32,
    /// Callee service.
    pub service: String,
    /// Callee endpoint.
    pub endpoint: String,
    /// When the caller's sidecar started the call (ns since the run began).
    pub call_start: u64,
    /// When the caller got its answer (`None`: still out at the end).
    pub call_end: Option<u64>,
    /// Attempts sent (1 + retries + hedges).
    pub attempts: u32,
    /// Attempt number (0 = first) whose work the callee times describe: the
    /// last to answer.
    pub answered_by: Option<u32>,
    /// Instance index (within its service) that did that work.
    pub instance: Option<u32>,
    /// When that request reached the instance.
    pub work_start: Option<u64>,
    /// When the instance answered it.
    pub work_end: Option<u64>,
    /// Whether the call failed, as its caller saw it.
    pub error: bool,
}

/// One sampled request: its calls, the root first.
#[derive(Clone, Debug, PartialEq)]
pub struct SampledRequest {
    /// Which request of the run it was (0 = the first generated).
    pub request: u64,
    /// Its calls, in the order they started.
    pub calls: Vec<TracedCall>,
}

/// What the engine keeps while tracing.
#[derive(Debug)]
pub(crate) struct Tracer {
    want: usize,
    pub traces: Vec<SampledRequest>,
    calls: BTreeMap<Ref, (usize, usize)>,
    atts: BTreeMap<Ref, (usize, usize, u32)>,
    /// Work in progress for a traced call: (trace, call, attempt number,
    /// instance, arrival time).
    works: BTreeMap<Ref, (usize, usize, u32, u32, u64)>,
}

impl Tracer {
    pub fn new(want: usize) -> Tracer {
        Tracer {
            want,
            traces: Vec::new(),
            calls: BTreeMap::new(),
            atts: BTreeMap::new(),
            works: BTreeMap::new(),
        }
    }

    /// A call started. `parent` is the work making it (`None`: a root
    /// request, number `request`, sampled while room is left and `measured`).
    #[allow(clippy::too_many_arguments)]
    pub fn on_call(
        &mut self,
        call: Ref,
        parent: Option<Ref>,
        request: u64,
        measured: bool,
        group: u32,
        service: &str,
        endpoint: &str,
        now: u64,
    ) {
        let (t, parent_index) = match parent {
            None => {
                if !measured || self.traces.len() >= self.want {
                    return;
                }
                self.traces.push(SampledRequest {
                    request,
                    calls: Vec::new(),
                });
                (self.traces.len() - 1, None)
            }
            Some(w) => match self.works.get(&w) {
                Some(&(t, c, ..)) => (t, Some(c)),
                None => return,
            },
        };
        let calls = &mut self.traces[t].calls;
        calls.push(TracedCall {
            parent: parent_index,
            group,
            service: service.to_owned(),
            endpoint: endpoint.to_owned(),
            call_start: now,
            call_end: None,
            attempts: 0,
            answered_by: None,
            instance: None,
            work_start: None,
            work_end: None,
            error: false,
        });
        self.calls.insert(call, (t, calls.len() - 1));
    }

    /// The call sent attempt `number`.
    pub fn on_attempt(&mut self, call: Ref, att: Ref, number: u32) {
        if let Some(&(t, c)) = self.calls.get(&call) {
            self.traces[t].calls[c].attempts += 1;
            self.atts.insert(att, (t, c, number));
        }
    }

    /// An attempt reached instance `instance` and became `work`.
    pub fn on_work(&mut self, att: Ref, work: Ref, instance: u32, now: u64) {
        if let Some((t, c, number)) = self.atts.remove(&att) {
            self.works.insert(work, (t, c, number, instance, now));
        }
    }

    /// The work answered. Its times go on the call unless the call has
    /// already ended (a hedge that lost answers after the winner).
    pub fn on_respond(&mut self, work: Ref, now: u64) {
        if let Some((t, c, number, instance, start)) = self.works.remove(&work) {
            let call = &mut self.traces[t].calls[c];
            if call.call_end.is_none() {
                call.answered_by = Some(number);
                call.instance = Some(instance);
                call.work_start = Some(start);
                call.work_end = Some(now);
            }
        }
    }

    /// The call ended.
    pub fn on_finish(&mut self, call: Ref, now: u64, error: bool) {
        if let Some((t, c)) = self.calls.remove(&call) {
            let call = &mut self.traces[t].calls[c];
            call.call_end = Some(now);
            call.error = error;
        }
    }
}
