//! Every record path and key name of the lab's runs, in one place: IMP's rounds and controls,
//! DST's and PaI's runs. The faces (CLI, browser, notebooks) read records through these.

/// Paths of the records of one run.
pub struct RunKeys {
    pub run: String,
}

impl RunKeys {
    fn round(&self, branch: Option<&str>, round: usize, file: &str) -> String {
        match branch {
            None => format!("{}/round-{round:02}/{file}", self.run),
            Some(b) => format!("{}/control-{b}/round-{round:02}/{file}", self.run),
        }
    }
    pub fn result(&self, branch: Option<&str>, round: usize) -> String {
        self.round(branch, round, "result.json")
    }
    /// The checkpoint of a round's unfinished training (removed once the round is done).
    pub fn checkpoint(&self, branch: Option<&str>, round: usize) -> String {
        self.round(branch, round, "checkpoint.bin")
    }
    pub fn mask(&self, round: usize) -> String {
        self.round(None, round, "mask.json")
    }
    pub fn ticket(&self, round: usize) -> String {
        self.round(None, round, "ticket.safetensors")
    }
    pub fn trained(&self, round: usize) -> String {
        self.round(None, round, "trained.safetensors")
    }
    /// What a control round trains from: its mask and starting weights, with provenance.
    pub fn control_start(&self, branch: &str, round: usize) -> String {
        self.round(Some(branch), round, "start.safetensors")
    }
    pub fn rewind(&self) -> String {
        format!("{}/rewind.safetensors", self.run)
    }
    pub fn config(&self) -> String {
        format!("{}/config.json", self.run)
    }
}

/// Record keys of one run.
pub struct DstKeys {
    pub run: String,
}

impl DstKeys {
    pub fn config(&self) -> String {
        format!("{}/config.json", self.run)
    }
    pub fn initial_mask(&self) -> String {
        format!("{}/initial-mask.json", self.run)
    }
    pub fn checkpoint(&self) -> String {
        format!("{}/checkpoint.bin", self.run)
    }
    pub fn mask(&self) -> String {
        format!("{}/mask.json", self.run)
    }
    pub fn explored(&self) -> String {
        format!("{}/explored.json", self.run)
    }
    pub fn trained(&self) -> String {
        format!("{}/trained.safetensors", self.run)
    }
    pub fn result(&self) -> String {
        format!("{}/result.json", self.run)
    }
}

/// Record keys of one PaI experiment: `pai-<hash>/config.json`, `ticket.safetensors` (θ0 and
/// the mask, written before training) and `result.json` (last: its presence marks it done).
pub struct PaiKeys {
    pub run: String,
}

impl PaiKeys {
    pub fn config(&self) -> String {
        format!("{}/config.json", self.run)
    }
    pub fn ticket(&self) -> String {
        format!("{}/ticket.safetensors", self.run)
    }
    pub fn result(&self) -> String {
        format!("{}/result.json", self.run)
    }
}

/// Record keys of the analyses that train through IMP: `<run>/config.json` and their own
/// results (LMC's split points, early-bird's draws and retrainings, transfer's branches).
pub struct AnalysisKeys {
    pub run: String,
}

impl AnalysisKeys {
    pub fn config(&self) -> String {
        format!("{}/config.json", self.run)
    }
    /// LMC: the line between two copies split at iteration `k`.
    pub fn split(&self, k: usize) -> String {
        format!("{}/k-{k:06}/result.json", self.run)
    }
    /// Early-bird: the Hamming distances between draws, and the dense run that made them.
    pub fn draws(&self) -> String {
        format!("{}/draws.json", self.run)
    }
    pub fn dense(&self) -> String {
        format!("{}/dense.json", self.run)
    }
    /// Early-bird: a bird drawn at `at` retrained as `name` (`ticket-at`, `continue-at`).
    pub fn retrained(&self, name: &str, at: usize) -> String {
        format!("{}/{name}-{at:06}/result.json", self.run)
    }
    /// Transfer: what a branch of a round starts from, and its result.
    pub fn branch_start(&self, round: usize, branch: &str) -> String {
        format!("{}/round-{round:02}/{branch}/start.safetensors", self.run)
    }
    pub fn branch_result(&self, round: usize, branch: &str) -> String {
        format!("{}/round-{round:02}/{branch}/result.json", self.run)
    }
}
