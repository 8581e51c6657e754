//! Linux scheduling policies for the proxy's threads: the serving threads
//! run under the configured [`Scheduling`], the telemetry thread under
//! `SCHED_IDLE`. Both keep the thread's nice value. Elsewhere than Linux
//! these are no-ops.

use crate::config::Scheduling;

/// Puts the calling thread under `scheduling`. Threads it spawns later
/// inherit the policy, so call it before building the runtime.
pub fn serve_with(scheduling: Scheduling) -> Result<(), String> {
    #[cfg(target_os = "linux")]
    {
        use thread_priority::unix::NormalThreadSchedulePolicy as Policy;
        let policy = match scheduling {
            Scheduling::Batch => Policy::Batch,
            Scheduling::Normal => Policy::Other,
        };
        linux::set_policy(policy)
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = scheduling;
        Ok(())
    }
}

/// Puts the calling thread under `SCHED_IDLE`: it runs only on a core
/// that has nothing else to do.
pub fn idle() -> Result<(), String> {
    #[cfg(target_os = "linux")]
    {
        linux::set_policy(thread_priority::unix::NormalThreadSchedulePolicy::Idle)
    }
    #[cfg(not(target_os = "linux"))]
    Ok(())
}

#[cfg(target_os = "linux")]
mod linux {
    use thread_priority::ThreadPriority;
    use thread_priority::unix::{
        NormalThreadSchedulePolicy, ThreadSchedulePolicy, set_thread_priority_and_policy,
        thread_native_id,
    };

    /// The calling thread's nice value, from `/proc/thread-self/stat`.
    fn nice() -> Result<i32, String> {
        let stat = std::fs::read_to_string("/proc/thread-self/stat")
            .map_err(|e| format!("cannot read /proc/thread-self/stat: {e}"))?;
        // Fields after the command name, which may hold spaces, start at
        // field 3 (state); nice is field 19.
        let after_name = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
        after_name
            .split_whitespace()
            .nth(16)
            .and_then(|n| n.parse().ok())
            .ok_or_else(|| "cannot parse the nice value in /proc/thread-self/stat".to_owned())
    }

    /// Sets `policy`, keeping the nice value: thread-priority sets the
    /// nice value along with a normal policy, so pick the priority that
    /// it maps to the current one.
    pub(super) fn set_policy(policy: NormalThreadSchedulePolicy) -> Result<(), String> {
        let nice = nice()?;
        let policy = ThreadSchedulePolicy::Normal(policy);
        let priority = (0..=99u8)
            .filter_map(|p| Some(ThreadPriority::Crossplatform(p.try_into().ok()?)))
            .find(|p| p.to_posix(policy).ok() == Some(nice))
            .ok_or_else(|| format!("no thread priority keeps nice {nice}"))?;
        set_thread_priority_and_policy(thread_native_id(), priority, policy)
            .map_err(|e| format!("cannot set the scheduling policy {policy:?}: {e:?}"))
    }
}
