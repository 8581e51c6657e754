//! Incidents kept across restarts: `DATA_DIR/incidents.json`, rewritten
//! (temporary file, fsync, rename) at most once a second while they
//! change, and once more at shutdown; read back at start. A file that
//! cannot be read is moved aside (never deleted) and the twin starts with
//! no incidents.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use meshtwin_model::incident::Incident;
use meshtwin_model::series::TwinView;
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

const FILE: &str = "incidents.json";
const FORMAT_VERSION: u32 = 1;
/// At most one write per this long while incidents keep changing.
const WRITE_EVERY: Duration = Duration::from_secs(1);

#[derive(Serialize, Deserialize)]
struct KeptIncidents {
    format_version: u32,
    incidents: Vec<Incident>,
}

/// The incidents kept in `data_dir`, oldest first; none if there is no file.
pub(crate) fn load(data_dir: &Path) -> Vec<Incident> {
    let path = data_dir.join(FILE);
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Vec::new(),
        Err(error) => return set_aside(&path, &error.to_string()),
    };
    match serde_json::from_str::<KeptIncidents>(&text) {
        Ok(kept) if kept.format_version == FORMAT_VERSION => {
            tracing::info!(
                incidents = kept.incidents.len(),
                "incidents kept before the restart"
            );
            kept.incidents
        }
        Ok(kept) => set_aside(
            &path,
            &format!(
                "format version {} is not {FORMAT_VERSION}",
                kept.format_version
            ),
        ),
        Err(error) => set_aside(&path, &error.to_string()),
    }
}

/// Moves an unreadable file out of the way, saying where and why.
fn set_aside(path: &Path, why: &str) -> Vec<Incident> {
    let seconds = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let aside = path.with_extension(format!("json.unreadable-{seconds}"));
    match std::fs::rename(path, &aside) {
        Ok(()) => tracing::error!(
            file = %path.display(),
            moved_to = %aside.display(),
            reason = why,
            "the incidents file cannot be read; starting with none"
        ),
        Err(error) => tracing::error!(
            file = %path.display(),
            reason = why,
            %error,
            "the incidents file cannot be read nor moved aside; starting with none"
        ),
    }
    Vec::new()
}

fn write(data_dir: &Path, incidents: &[Incident]) -> std::io::Result<()> {
    use std::io::Write as _;
    let kept = KeptIncidents {
        format_version: FORMAT_VERSION,
        incidents: incidents.to_vec(),
    };
    let json = serde_json::to_vec(&kept).map_err(std::io::Error::other)?;
    let temporary = data_dir.join(format!("{FILE}.tmp"));
    let mut file = std::fs::File::create(&temporary)?;
    file.write_all(&json)?;
    file.sync_all()?;
    std::fs::rename(&temporary, data_dir.join(FILE))
}

/// Writes the twin's incidents to `data_dir` whenever they change, until
/// `stop`, then once more.
pub(crate) async fn keep(
    mut view: watch::Receiver<TwinView>,
    data_dir: PathBuf,
    stop: impl Future<Output = ()>,
) {
    tokio::pin!(stop);
    let mut written = view.borrow().incidents.clone();
    loop {
        let stopping = tokio::select! {
            () = &mut stop => true,
            changed = view.changed() => changed.is_err(),
        };
        let incidents = view.borrow_and_update().incidents.clone();
        if !Arc::ptr_eq(&incidents, &written) && *incidents != *written {
            let dir = data_dir.clone();
            let list = incidents.clone();
            match tokio::task::spawn_blocking(move || write(&dir, &list)).await {
                Ok(Ok(())) => written = incidents,
                Ok(Err(error)) => {
                    tracing::error!(%error, dir = %data_dir.display(), "incidents not written; retrying on the next change")
                }
                Err(error) => tracing::error!(%error, "incident writer failed"),
            }
        }
        if stopping {
            break;
        }
        tokio::time::sleep(WRITE_EVERY).await;
    }
}

#[cfg(test)]
mod tests {
    use meshtwin_model::incident::IncidentState;

    use super::*;

    fn incident(id: u64) -> Incident {
        Incident {
            id,
            state: IncidentState::Resolved,
            opened_unix_nanos: 1,
            confirmed_unix_nanos: 2,
            updated_unix_nanos: 2,
            resolved_unix_nanos: Some(3),
            nodes: vec!["shop/cart".into()],
            signals: vec![],
            anomalies: 2,
        }
    }

    #[test]
    fn written_incidents_load_back() {
        let dir = tempfile::tempdir().unwrap();
        assert!(load(dir.path()).is_empty(), "no file yet");
        write(dir.path(), &[incident(1), incident(2)]).unwrap();
        assert_eq!(load(dir.path()), [incident(1), incident(2)]);
    }

    #[test]
    fn an_unreadable_file_is_moved_aside_not_lost() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(FILE), b"{\"format_version\": 1, \"incid").unwrap();
        assert!(load(dir.path()).is_empty());
        let names: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names.len(), 1, "{names:?}");
        assert!(
            names[0].starts_with("incidents.json.unreadable-"),
            "{names:?}"
        );
    }
}
