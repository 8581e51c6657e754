//! `meshtwin eval SUITE`: generate the suite's cases (or reuse them from
//! the cache), score every method on them, print the Markdown report and
//! write it with its JSON beside it. `meshtwin seal-suite`: the same
//! config with fresh seeds.

use std::path::PathBuf;
use std::time::Instant;

use indicatif::{ProgressBar, ProgressStyle};
use meshtwin_datasets::suite::{self, SuiteConfig, SuiteProgress};
use meshtwin_eval::case_data::CaseData;
use meshtwin_eval::{baselines, calibration, scale, twin_check};
use meshtwin_twin::TwinConfig;

use crate::Failure;
use crate::cli::{EvalArgs, SealArgs};
use crate::settings::ConfigProblems;

fn bar(total: u64, what: &str) -> ProgressBar {
    ProgressBar::new(total).with_style(
        ProgressStyle::with_template(&format!(
            "{{prefix}} [{{bar:30}}] {{pos}}/{{len}} {what} {{msg}} ({{elapsed}}, eta {{eta}})"
        ))
        .expect("valid template")
        .progress_chars("=> "),
    )
}

/// Prints to stdout; a reader that went away (`| head`) is not an error.
fn say(text: &str) {
    use std::io::Write;
    let _ = std::io::stdout().lock().write_all(text.as_bytes());
}

fn default_cache() -> PathBuf {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(|| PathBuf::from(".cache"));
    base.join("meshtwin").join("suites")
}

fn load(suite: &str) -> Result<SuiteConfig, Failure> {
    SuiteConfig::load(suite).map_err(|e| Failure::Config(ConfigProblems(e.0)))
}

pub(crate) fn eval(args: &EvalArgs) -> Result<(), Failure> {
    let config = load(&args.suite)?;
    let cases = config
        .cases()
        .map_err(|e| Failure::Config(ConfigProblems(e.0)))?;
    let jobs = args
        .jobs
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let cache = args
        .cache
        .clone()
        .unwrap_or_else(default_cache)
        .join(&config.name);
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from("meshtwin-eval").join(&config.name));

    let started = Instant::now();
    let progress = bar(cases.len() as u64, "cases");
    progress.set_prefix(format!("generate {}", config.name));
    let report_progress = |p: SuiteProgress| {
        progress.set_position(p.done as u64);
        progress.set_message(format!("({} cached, {} spans)", p.cached, p.spans));
    };
    let generated = suite::generate(&cases, &cache, jobs, &report_progress)
        .map_err(|e| Failure::Start(format!("generating {}: {e}", config.name)))?;
    progress.finish_and_clear();
    let cached = generated.iter().filter(|c| c.cached).count();
    let spans: u64 = generated.iter().map(|c| c.manifest.spans).sum();
    say(&format!(
        "eval: suite {} has {} cases ({cached} from the cache in {}), {spans} spans; ready in {:.1} s\n",
        config.name,
        generated.len(),
        cache.display(),
        started.elapsed().as_secs_f64()
    ));

    // The calibration run, and one fault-free run per topology for the
    // twin's graph check.
    let mut checks = vec![calibration::case()];
    checks.extend(config.topologies.iter().map(|t| twin_check::case(t)));
    let scale_case = config
        .scale_check_services
        .map(scale::case)
        .transpose()
        .map_err(|e| Failure::Start(format!("the scale case: {e}")))?;
    let scaled = scale_case.is_some();
    checks.extend(scale_case);
    let checks = suite::generate(&checks, &cache.with_file_name("checks"), jobs, &|_| {})
        .map_err(|e| Failure::Start(format!("the calibration runs: {e}")))?;
    let calibration_data = CaseData::load(&checks[0].dir)
        .map_err(|e| Failure::Start(format!("the calibration run: {e}")))?;

    let scoring = Instant::now();
    let mut rankers = meshtwin_eval::ours::all();
    rankers.extend(baselines::all());
    let progress = bar(0, "cases scored");
    progress.set_prefix(format!("eval {}", config.name));
    let report =
        meshtwin_eval::evaluate(&config.name, &generated, &rankers, jobs, &|done, total| {
            progress.set_length(total as u64);
            progress.set_position(done as u64);
        })
        .map_err(|e| Failure::Start(format!("scoring {}: {e}", config.name)))?;
    progress.finish_and_clear();
    say(&format!(
        "eval: every method ranked every case in {:.1} s\n",
        scoring.elapsed().as_secs_f64()
    ));
    let mut report = report;
    let calibration = calibration::online_boutique(&calibration_data);
    let calibrated = calibration.holds();
    report.calibration = Some(calibration);
    let checks = match checks.split_last() {
        Some((scale_case, rest)) if scaled => {
            report.scale = CaseData::load(&scale_case.dir)
                .map_err(|e| Failure::Start(format!("the scale case: {e}")))
                .map(|data| scale::measure(&scale_case.case.topology, &data))?;
            rest
        }
        _ => &checks[..],
    };
    for case in &checks[1..] {
        let check = CaseData::load(&case.dir)
            .and_then(|data| twin_check::check(&case.case.topology, &case.dir, &data))
            .map_err(|e| {
                Failure::Start(format!("the twin check of {}: {e}", case.case.topology))
            })?;
        report.graph_checks.push(check);
    }
    let twin_holds = report.graph_checks.iter().all(|c| c.holds());

    let detecting = Instant::now();
    let progress = bar(generated.len() as u64, "cases through the twin");
    progress.set_prefix(format!("detect {}", config.name));
    let detection =
        meshtwin_eval::detect_all(&generated, &TwinConfig::default(), jobs, &|done, _| {
            progress.set_position(done as u64)
        })
        .map_err(|e| Failure::Start(format!("end to end on {}: {e}", config.name)))?;
    progress.finish_and_clear();
    say(&format!(
        "eval: every case end to end through the twin in {:.1} s\n",
        detecting.elapsed().as_secs_f64()
    ));
    report.detection = Some(detection);

    let markdown = report.markdown();
    say(&markdown);
    std::fs::create_dir_all(&out).map_err(|e| Failure::Start(format!("{}: {e}", out.display())))?;
    let json = serde_json::to_vec_pretty(&report).expect("a report serialises");
    for (name, bytes) in [("report.md", markdown.as_bytes()), ("report.json", &json)] {
        let path = out.join(name);
        std::fs::write(&path, bytes)
            .map_err(|e| Failure::Start(format!("{}: {e}", path.display())))?;
    }
    say(&format!(
        "eval: done in {:.1} s; wrote {}/report.md and report.json\n",
        scoring.elapsed().as_secs_f64(),
        out.display()
    ));
    if !calibrated {
        return Err(Failure::Start(
            "the simulation is off its calibration (see the table above)".to_owned(),
        ));
    }
    if !twin_holds {
        return Err(Failure::Start(
            "the twin's graph differs from the spans (see the table above)".to_owned(),
        ));
    }
    Ok(())
}

pub(crate) fn seal(args: &SealArgs) -> Result<(), Failure> {
    let config = load(&args.suite)?;
    let sealed =
        suite::seal(&config).map_err(|e| Failure::Start(format!("reading /dev/urandom: {e}")))?;
    let text = toml::to_string(&sealed).expect("a suite config serialises");
    say(&format!(
        "# {} with fresh seeds from /dev/urandom: score it once, record the result,\n\
         # and do not tune on it.\n{text}",
        config.name
    ));
    Ok(())
}
