//! `island credentials set|clear|import`: the coordinator credentials of this Island, kept in
//! the OS keyring (or, without one, a file only its owner can read).

use std::path::Path;
use std::process::ExitCode;

use super::{CredentialsAction, config_error};
use crate::config::{self, Config, ConfigEdit, Secret};
use crate::credentials::{CredentialStore, Credentials, Stored};
use crate::home::IslandHome;
use crate::state::StateStore;

pub(super) fn run(home: &IslandHome, path: &Path, action: CredentialsAction) -> ExitCode {
    let config = match path.exists().then(|| config::load(path)).transpose() {
        Ok(loaded) => loaded.map(|l| l.config).unwrap_or_default(),
        Err(e) => return config_error(&e),
    };
    // The credentials belong to this Island's id: the config's override, else state.json's.
    let id = match &config.host_id {
        Some(id) => id.clone(),
        None => match StateStore::open(&home.state_file()) {
            Ok(s) => s.get().host_id.clone(),
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::FAILURE;
            }
        },
    };
    let store = CredentialStore::new(home.root(), &id);
    match action {
        CredentialsAction::Set { user } => set(&store, &id, &config, user),
        CredentialsAction::Clear => done(store.clear().map(|()| println!("Removed the stored credentials.")), &config),
        CredentialsAction::Import => import(&store, &id, path),
    }
}

fn set(store: &CredentialStore, id: &str, config: &Config, user: String) -> ExitCode {
    let password = if std::io::IsTerminal::is_terminal(&std::io::stdin()) {
        rpassword::prompt_password(format!("NATS password for {user}: "))
    } else {
        let mut line = String::new();
        std::io::stdin().read_line(&mut line).map(|_| line.trim_end_matches(['\r', '\n']).to_string())
    };
    let password = match password {
        Ok(p) if !p.is_empty() => p,
        Ok(_) => {
            eprintln!("error: the password is empty");
            return ExitCode::from(2);
        }
        Err(e) => {
            eprintln!("error: cannot read the password: {e}");
            return ExitCode::FAILURE;
        }
    };
    let creds = Credentials { user, password: Secret::new(password) };
    done(store.save(&creds).map(|stored| say_stored(&stored, id)), config)
}

/// Stores the file's URL's user and password (not an `ISLAND_NATS_URL` override's), then
/// takes them out of the file. The file is only rewritten once the credentials are safely
/// stored, so nothing is lost on either failure.
fn import(store: &CredentialStore, id: &str, path: &Path) -> ExitCode {
    let in_file = std::fs::read_to_string(path)
        .map_err(|source| config::ConfigError::Read { path: path.to_path_buf(), source })
        .and_then(|text| config::parse(&text, path));
    let config = match in_file {
        Ok((config, _)) => config,
        Err(e) => return config_error(&e),
    };
    let Some((user, password)) = config.coordinator.nats_url.credentials() else {
        println!("coordinator.nats_url in {} carries no password: nothing to import.", path.display());
        return ExitCode::SUCCESS;
    };
    let creds = Credentials { user: user.to_string(), password };
    match store.save(&creds) {
        Ok(stored) => say_stored(&stored, id),
        Err(e) => {
            eprintln!("error: {e}; {} was left as it was", path.display());
            return ExitCode::FAILURE;
        }
    }
    match config::apply_edits(path, &[ConfigEdit::ForgetNatsCredentials]) {
        Ok(_) => {
            let url = config.coordinator.nats_url.without_credentials();
            println!("coordinator.nats_url is now {url} (the rest of the file is unchanged).");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: the credentials are stored, but {} could not be rewritten: {e}", path.display());
            ExitCode::FAILURE
        }
    }
}

fn say_stored(stored: &Stored, id: &str) {
    match stored {
        Stored::Keyring => println!("Stored in the OS keyring for Island {id}."),
        Stored::File(f) => {
            println!("No OS keyring is available here: stored in {} (readable only by you).", f.display())
        }
    }
}

fn done(result: Result<(), crate::credentials::CredentialsError>, config: &Config) -> ExitCode {
    match result {
        Ok(()) => {
            if config.coordinator.nats_url.credentials().is_some() {
                println!(
                    "Note: coordinator.nats_url carries a user and password, which take precedence; \
                     `island credentials import` moves them here."
                );
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
