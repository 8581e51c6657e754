//! What a ranking is made from: spans and metric points of a period, with
//! names interned, and the two windows compared.

use foldhash::HashMap;

/// Index into [`RcaInput`]'s names.
pub type Name = u32;

/// The span kinds that matter here (OTLP's, without UNSPECIFIED).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Internal,
    Server,
    Client,
    Producer,
    Consumer,
}

impl Kind {
    /// OTLP's enum value; unspecified counts as internal.
    pub fn from_otlp(value: i32) -> Self {
        match value {
            2 => Self::Server,
            3 => Self::Client,
            4 => Self::Producer,
            5 => Self::Consumer,
            _ => Self::Internal,
        }
    }

    pub fn is_callee(self) -> bool {
        matches!(self, Self::Server | Self::Consumer)
    }

    pub fn is_caller(self) -> bool {
        matches!(self, Self::Client | Self::Producer)
    }
}

/// One span, as ranking needs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    pub trace: u128,
    pub span: u64,
    /// 0 for a root.
    pub parent: u64,
    pub service: Name,
    pub instance: Option<Name>,
    pub operation: Name,
    pub kind: Kind,
    /// The service a CLIENT or PRODUCER span calls, when it names one.
    pub peer: Option<Name>,
    pub start: u64,
    pub end: u64,
    pub error: bool,
    /// Attempts beyond the first (`http.request.resend_count`).
    pub retries: u32,
    /// Endpoints the call's failures got ejected (the proxy's
    /// `mesh.endpoint.ejections`).
    pub ejections: u32,
    /// Turned away by an open circuit breaker (`mesh.breaker = open`).
    pub breaker_open: bool,
}

/// One value of one metric of one service (instance) at a time.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MetricPoint {
    pub service: Name,
    pub instance: Option<Name>,
    pub metric: Name,
    pub time: u64,
    pub value: f64,
}

/// The periods compared, in Unix nanoseconds, `[from, to)`: normal
/// behaviour, and the abnormal period to explain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Windows {
    pub normal: (u64, u64),
    pub abnormal: (u64, u64),
}

impl Windows {
    pub fn in_normal(&self, t: u64) -> bool {
        self.normal.0 <= t && t < self.normal.1
    }

    pub fn in_abnormal(&self, t: u64) -> bool {
        self.abnormal.0 <= t && t < self.abnormal.1
    }
}

/// Spans and metric points of both windows.
#[derive(Debug, Clone, Default)]
pub struct RcaInput {
    names: Vec<String>,
    index: HashMap<String, Name>,
    pub spans: Vec<Span>,
    pub metrics: Vec<MetricPoint>,
}

impl RcaInput {
    /// The name for `text`, interned.
    pub fn name(&mut self, text: &str) -> Name {
        if let Some(&name) = self.index.get(text) {
            return name;
        }
        let name = self.names.len() as Name;
        self.names.push(text.to_owned());
        self.index.insert(text.to_owned(), name);
        name
    }

    pub fn text(&self, name: Name) -> &str {
        self.names.get(name as usize).map_or("?", String::as_str)
    }

    pub fn names(&self) -> usize {
        self.names.len()
    }
}
