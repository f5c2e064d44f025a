//! Who may log in, and the server side of SASL (RFC 6120 §6).
//!
//! PLAIN and the PBKDF2 secrets come from the `sasl` crate (xmpp-rs), driven
//! by [`Accounts`], which holds the configured accounts with their SCRAM
//! secrets derived once at start. Two mechanisms are written here instead:
//! - SCRAM-SHA-1 (RFC 5802, on the `hmac` and `sha1` crates): the `sasl`
//!   crate's server refuses the gs2 header `n,,` ("client does not support
//!   channel binding"), which is what clients send when the server offers
//!   no channel binding, so no ordinary client could log in with it;
//! - ANONYMOUS (RFC 4505): the `sasl` crate's version refuses the optional
//!   trace token RFC 4505 allows and makes a user name that is not a valid
//!   JID localpart.
//!
//! Sans-IO: a [`SaslSession`] takes the decoded client data and says what
//! to answer. The stream decides which mechanisms it offers (PLAIN only
//! over a secure transport).
//!
//! Randomness comes from the caller, as rustls takes it from its provider:
//! [`SaslSession::start`] borrows the stream's generator (`&mut dyn
//! RngCore`) and draws there, once, what the exchange will need (a guest's
//! name, SCRAM's server nonce), so that [`SaslSession::step`] depends on
//! the client's data alone and a test with a seeded generator sees the
//! same exchange on every run.
//!
//! Salts are not random: every SCRAM salt is derived from the user name and
//! the server's [`SaltKey`], for a configured account and for an unknown
//! name alike. An unknown user therefore gets the same salt and iteration
//! count on every attempt, as an account does, and the first SCRAM message
//! does not tell whether an account exists. The key is drawn at each start,
//! or kept in the data directory (as the STARTTLS certificate is) so that
//! salts stay the same across restarts too.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use hmac::{Hmac, Mac};
use rand::{Rng, RngCore};
use sasl::common::Identity;
use sasl::secret::{Pbkdf2Sha1, Plain as PlainSecret};
use sasl::server::mechanisms::Plain;
use sasl::server::{Mechanism, Response, Validator, ValidatorError};
use sha1::{Digest, Sha1 as Sha1Hash};

/// PBKDF2 iterations for the SCRAM secrets (RFC 7677 suggests at least 4096).
const SCRAM_ITERATIONS: u32 = 4096;

/// Bytes of a SCRAM salt.
const SALT_LEN: usize = 16;

/// The file in the data directory that keeps the [`SaltKey`].
const SALT_KEY_FILE: &str = "xmpp-salt-key";

/// The server's secret from which every SCRAM salt is derived:
/// HMAC-SHA-1(key, user name), cut to 16 bytes. Configured accounts and
/// unknown names get their salts the same way, so that the salt a client
/// is sent says nothing about whether the account exists.
#[derive(Clone)]
pub struct SaltKey([u8; 32]);

impl std::fmt::Debug for SaltKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the key.
        f.write_str("SaltKey")
    }
}

impl SaltKey {
    /// A key drawn from `rng`.
    pub fn random(rng: &mut dyn RngCore) -> SaltKey {
        SaltKey(rng.gen())
    }

    /// A key drawn from the operating system's generator, for a server
    /// that keeps no data directory (salts change at every start, for
    /// accounts and unknown names alike).
    pub fn from_os() -> SaltKey {
        SaltKey::random(&mut rand::rngs::OsRng)
    }

    /// The key kept in `dir` (`xmpp-salt-key`, readable by its owner
    /// only): drawn from the operating system at the first start, read
    /// afterwards, so that salts stay the same across restarts.
    pub fn kept_in(dir: &Path) -> std::io::Result<SaltKey> {
        let path = dir.join(SALT_KEY_FILE);
        let in_file =
            |e: std::io::Error| std::io::Error::new(e.kind(), format!("{}: {e}", path.display()));
        match std::fs::read(&path) {
            Ok(bytes) => {
                let key: [u8; 32] = bytes.try_into().map_err(|_| {
                    std::io::Error::new(
                        std::io::ErrorKind::InvalidData,
                        format!(
                            "{}: not a 32-byte key (remove it to make a new one)",
                            path.display()
                        ),
                    )
                })?;
                Ok(SaltKey(key))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let key = SaltKey::from_os();
                std::fs::create_dir_all(dir).map_err(in_file)?;
                crate::tls::write_private(&path, &key.0).map_err(in_file)?;
                Ok(key)
            }
            Err(e) => Err(in_file(e)),
        }
    }

    /// The salt of `user`.
    fn salt(&self, user: &str) -> [u8; SALT_LEN] {
        let mac = hmac(&self.0, user.as_bytes());
        let mut salt = [0; SALT_LEN];
        for (s, m) in salt.iter_mut().zip(mac) {
            *s = m;
        }
        salt
    }
}

/// The configured accounts (user name -> password), with SCRAM secrets.
pub struct Accounts {
    accounts: HashMap<String, Account>,
    salt_key: SaltKey,
}

impl Default for Accounts {
    /// No accounts. The salt key is all zeros: with no account there is
    /// nothing for a salt to hide, and SCRAM is not offered.
    fn default() -> Accounts {
        Accounts {
            accounts: HashMap::new(),
            salt_key: SaltKey([0; 32]),
        }
    }
}

struct Account {
    password: String,
    scram_sha1: Pbkdf2Sha1,
}

impl std::fmt::Debug for Accounts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print passwords.
        f.debug_struct("Accounts")
            .field("users", &self.accounts.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl Accounts {
    /// Accounts from (user, password) pairs, their SCRAM salts derived
    /// with `salt_key`. User names are JID localparts; invalid ones are
    /// refused.
    pub fn new<'a>(
        pairs: impl IntoIterator<Item = (&'a str, &'a str)>,
        salt_key: SaltKey,
    ) -> Result<Accounts, String> {
        let mut accounts = HashMap::new();
        for (user, password) in pairs {
            if xmpp_parsers::jid::BareJid::new(&format!("{user}@localhost")).is_err()
                || user.contains('@')
            {
                return Err(format!(
                    "account name {user:?} is not a valid JID localpart"
                ));
            }
            let salt = salt_key.salt(user);
            let scram_sha1 = Pbkdf2Sha1::derive(password, &salt, SCRAM_ITERATIONS)
                .map_err(|e| format!("deriving the SCRAM secret of {user}: {e:?}"))?;
            accounts.insert(
                user.to_string(),
                Account {
                    password: password.to_string(),
                    scram_sha1,
                },
            );
        }
        Ok(Accounts { accounts, salt_key })
    }

    /// Whether any accounts are configured.
    pub fn is_empty(&self) -> bool {
        self.accounts.is_empty()
    }
}

/// The `sasl` crate's mechanisms own their validator; this is a cheap
/// shared handle to the accounts.
#[derive(Clone)]
struct AccountsRef(Arc<Accounts>);

fn user_of(identity: &Identity) -> Option<&str> {
    match identity {
        Identity::Username(u) => Some(u),
        Identity::None => None,
    }
}

impl Validator<PlainSecret> for AccountsRef {
    fn validate(&self, identity: &Identity, value: &PlainSecret) -> Result<(), ValidatorError> {
        let account = user_of(identity).and_then(|u| self.0.accounts.get(u));
        match account {
            Some(a) if constant_time_eq(a.password.as_bytes(), value.0.as_bytes()) => Ok(()),
            _ => Err(ValidatorError::AuthenticationFailed),
        }
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// SASL mechanisms the server implements.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MechanismName {
    /// RFC 4505, for guests.
    Anonymous,
    /// RFC 5802 with SHA-1.
    ScramSha1,
    /// RFC 4616; offered over secure transports only.
    Plain,
}

impl MechanismName {
    /// The IANA name.
    pub fn as_str(self) -> &'static str {
        match self {
            MechanismName::Anonymous => "ANONYMOUS",
            MechanismName::ScramSha1 => "SCRAM-SHA-1",
            MechanismName::Plain => "PLAIN",
        }
    }

    /// Parse an IANA name.
    pub fn parse(s: &str) -> Option<MechanismName> {
        match s {
            "ANONYMOUS" => Some(MechanismName::Anonymous),
            "SCRAM-SHA-1" => Some(MechanismName::ScramSha1),
            "PLAIN" => Some(MechanismName::Plain),
            _ => None,
        }
    }
}

/// Who logged in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Authenticated {
    /// A configured account (its user name).
    User(String),
    /// A guest; the server names it.
    Guest(String),
}

impl Authenticated {
    /// The localpart of the JID this login gets.
    pub fn localpart(&self) -> &str {
        match self {
            Authenticated::User(u) | Authenticated::Guest(u) => u,
        }
    }
}

/// What to answer the client.
#[derive(Debug, PartialEq, Eq)]
pub enum SaslStep {
    /// `<challenge/>` with this data.
    Challenge(Vec<u8>),
    /// `<success/>` with this additional data.
    Success(Authenticated, Vec<u8>),
    /// `<failure/>` with this RFC 6120 §6.5 condition.
    Failure(&'static str),
}

/// One SASL exchange.
pub struct SaslSession {
    kind: SessionKind,
}

enum SessionKind {
    /// The name the guest will get.
    Anonymous {
        guest: String,
    },
    Plain(Box<dyn Mechanism + Send>),
    Scram(ScramServer),
}

impl SaslSession {
    /// Start `name` against `accounts`, drawing from `rng` what the
    /// exchange needs (a guest's name, SCRAM's server nonce).
    pub fn start(
        name: MechanismName,
        accounts: &Arc<Accounts>,
        rng: &mut dyn RngCore,
    ) -> SaslSession {
        let kind = match name {
            MechanismName::Anonymous => SessionKind::Anonymous {
                guest: format!("guest-{:016x}", rng.gen::<u64>()),
            },
            MechanismName::Plain => {
                SessionKind::Plain(Box::new(Plain::new(AccountsRef(accounts.clone()))))
            }
            MechanismName::ScramSha1 => {
                SessionKind::Scram(ScramServer::new(accounts.clone(), rng.gen()))
            }
        };
        SaslSession { kind }
    }

    /// Feed the client's (base64-decoded) data: the initial response or a
    /// later response.
    pub fn step(&mut self, data: &[u8]) -> SaslStep {
        match &mut self.kind {
            SessionKind::Anonymous { guest } => {
                // RFC 4505: an optional trace token of at most 255 characters.
                if data.len() > 255 * 4 || std::str::from_utf8(data).is_err() {
                    return SaslStep::Failure("malformed-request");
                }
                SaslStep::Success(Authenticated::Guest(guest.clone()), Vec::new())
            }
            SessionKind::Plain(mech) => match mech.respond(data) {
                Ok(Response::Success(Identity::Username(user), extra)) => {
                    SaslStep::Success(Authenticated::User(user), extra)
                }
                Ok(_) => SaslStep::Failure("not-authorized"),
                Err(sasl::server::MechanismError::ValidatorError(_)) => {
                    SaslStep::Failure("not-authorized")
                }
                Err(_) => SaslStep::Failure("malformed-request"),
            },
            SessionKind::Scram(scram) => scram.step(data),
        }
    }
}

type HmacSha1 = Hmac<Sha1Hash>;

fn hmac(key: &[u8], data: &[u8]) -> Vec<u8> {
    // HMAC takes keys of any length; `new_from_slice` cannot fail for it.
    match HmacSha1::new_from_slice(key) {
        Ok(mut mac) => {
            mac.update(data);
            mac.finalize().into_bytes().to_vec()
        }
        Err(_) => Vec::new(),
    }
}

/// The server side of SCRAM-SHA-1 without channel binding (RFC 5802).
struct ScramServer {
    accounts: Arc<Accounts>,
    /// The server's part of the nonce, drawn when the exchange started.
    server_nonce: u128,
    state: ScramState,
}

enum ScramState {
    Start,
    Challenged {
        gs2_header: String,
        client_first_bare: String,
        server_first: String,
        nonce: String,
        user: String,
        /// `None` for an unknown user: the exchange runs to the end, with
        /// the salt and iteration count an account would get and the same
        /// computations, and fails there, so user names cannot be probed.
        salted_password: Option<Vec<u8>>,
    },
    Done,
}

impl ScramServer {
    fn new(accounts: Arc<Accounts>, server_nonce: u128) -> ScramServer {
        ScramServer {
            accounts,
            server_nonce,
            state: ScramState::Start,
        }
    }

    fn step(&mut self, data: &[u8]) -> SaslStep {
        let Ok(text) = std::str::from_utf8(data) else {
            return SaslStep::Failure("malformed-request");
        };
        match std::mem::replace(&mut self.state, ScramState::Done) {
            ScramState::Start => self.client_first(text),
            ScramState::Challenged {
                gs2_header,
                client_first_bare,
                server_first,
                nonce,
                user,
                salted_password,
            } => {
                let Some(without_proof) = text.rsplit_once(",p=").map(|(a, _)| a) else {
                    return SaslStep::Failure("malformed-request");
                };
                let attrs = scram_attrs(text);
                let (Some(c), Some(r), Some(p)) = (attrs.get("c"), attrs.get("r"), attrs.get("p"))
                else {
                    return SaslStep::Failure("malformed-request");
                };
                if *c != B64.encode(gs2_header.as_bytes()) || *r != nonce {
                    return SaslStep::Failure("not-authorized");
                }
                let Ok(proof) = B64.decode(p) else {
                    return SaslStep::Failure("incorrect-encoding");
                };
                // An unknown user's proof is checked against a made-up key,
                // so that it takes as long to refuse as a wrong password.
                let known = salted_password.is_some();
                let salted = salted_password.unwrap_or_else(|| vec![0; 20]);
                let auth_message = format!("{client_first_bare},{server_first},{without_proof}");
                let client_key = hmac(&salted, b"Client Key");
                let stored_key = Sha1Hash::digest(&client_key).to_vec();
                let client_signature = hmac(&stored_key, auth_message.as_bytes());
                if proof.len() != client_signature.len() {
                    return SaslStep::Failure("not-authorized");
                }
                let recovered: Vec<u8> = proof
                    .iter()
                    .zip(&client_signature)
                    .map(|(a, b)| a ^ b)
                    .collect();
                if !constant_time_eq(&Sha1Hash::digest(&recovered), &stored_key) || !known {
                    return SaslStep::Failure("not-authorized");
                }
                let server_key = hmac(&salted, b"Server Key");
                let server_signature = hmac(&server_key, auth_message.as_bytes());
                let verifier = format!("v={}", B64.encode(server_signature));
                SaslStep::Success(Authenticated::User(user), verifier.into_bytes())
            }
            ScramState::Done => SaslStep::Failure("malformed-request"),
        }
    }

    fn client_first(&mut self, text: &str) -> SaslStep {
        // gs2-header: "n,," or "y,," (we offer no channel binding; "p="
        // asks for one we do not have). No authzid.
        let (gs2_header, bare) = if let Some(rest) = text.strip_prefix("n,,") {
            ("n,,", rest)
        } else if let Some(rest) = text.strip_prefix("y,,") {
            ("y,,", rest)
        } else {
            return SaslStep::Failure("malformed-request");
        };
        let attrs = scram_attrs(bare);
        let (Some(user), Some(client_nonce)) = (attrs.get("n"), attrs.get("r")) else {
            return SaslStep::Failure("malformed-request");
        };
        if attrs.contains_key("m")
            || client_nonce.is_empty()
            || client_nonce.len() > 256
            || user.len() > 256
        {
            return SaslStep::Failure("malformed-request");
        }
        // RFC 5802 §5.1: ',' and '=' in the name are escaped.
        let user = user.replace("=2C", ",").replace("=3D", "=");
        let account = self.accounts.accounts.get(&user);
        // The same salt for an unknown name as an account of that name
        // would have (see [`SaltKey`]); the iteration count is one for all.
        let salt: Vec<u8> = match account {
            Some(a) => a.scram_sha1.salt.clone(),
            None => self.accounts.salt_key.salt(&user).to_vec(),
        };
        let server_nonce = format!("{client_nonce}{:032x}", self.server_nonce);
        let server_first = format!(
            "r={server_nonce},s={},i={SCRAM_ITERATIONS}",
            B64.encode(&salt)
        );
        self.state = ScramState::Challenged {
            gs2_header: gs2_header.to_string(),
            client_first_bare: bare.to_string(),
            server_first: server_first.clone(),
            nonce: server_nonce,
            user,
            salted_password: account.map(|a| a.scram_sha1.digest.clone()),
        };
        SaslStep::Challenge(server_first.into_bytes())
    }
}

/// `a=b,c=d` attributes of a SCRAM message (values may contain '=').
fn scram_attrs(text: &str) -> HashMap<&str, &str> {
    text.split(',')
        .filter_map(|kv| kv.split_once('='))
        .collect()
}

#[cfg(test)]
mod tests {
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    use super::*;

    fn rng() -> StdRng {
        StdRng::seed_from_u64(7)
    }

    fn accounts<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Arc<Accounts> {
        Arc::new(Accounts::new(pairs, SaltKey::random(&mut rng())).unwrap())
    }

    /// The salt and iteration count of the server-first message SCRAM
    /// answers `user` with.
    fn scram_salt(accounts: &Arc<Accounts>, rng: &mut StdRng, user: &str) -> (String, String) {
        let mut server = SaslSession::start(MechanismName::ScramSha1, accounts, rng);
        let first = format!("n,,n={user},r=clientnonce");
        let SaslStep::Challenge(ch) = server.step(first.as_bytes()) else {
            panic!("expected a challenge")
        };
        let ch = String::from_utf8(ch).unwrap();
        let attrs = scram_attrs(&ch);
        (attrs["s"].to_string(), attrs["i"].to_string())
    }

    #[test]
    fn plain_accepts_right_password_and_refuses_wrong_one() {
        let accounts = accounts([("alice", "secret")]);
        let rng = &mut rng();
        let mut s = SaslSession::start(MechanismName::Plain, &accounts, rng);
        assert_eq!(
            s.step(b"\0alice\0secret"),
            SaslStep::Success(Authenticated::User("alice".into()), vec![])
        );
        let mut s = SaslSession::start(MechanismName::Plain, &accounts, rng);
        assert_eq!(
            s.step(b"\0alice\0wrong"),
            SaslStep::Failure("not-authorized")
        );
        let mut s = SaslSession::start(MechanismName::Plain, &accounts, rng);
        assert_eq!(
            s.step(b"\0mallory\0secret"),
            SaslStep::Failure("not-authorized")
        );
        let mut s = SaslSession::start(MechanismName::Plain, &accounts, rng);
        assert_eq!(s.step(b"garbage"), SaslStep::Failure("malformed-request"));
    }

    #[test]
    fn scram_sha1_round_trip_with_the_sasl_client() {
        use sasl::client::mechanisms::Scram as ClientScram;
        use sasl::client::Mechanism as _;
        use sasl::common::scram::Sha1;
        use sasl::common::{ChannelBinding, Credentials};
        let accounts = accounts([("bob", "pencil")]);
        let rng = &mut rng();
        for (password, cb, ok) in [
            ("pencil", ChannelBinding::None, true),
            ("pencil", ChannelBinding::Unsupported, true),
            ("pen", ChannelBinding::None, false),
        ] {
            let creds = Credentials::default()
                .with_username("bob")
                .with_password(password)
                .with_channel_binding(cb);
            let mut client = ClientScram::<Sha1>::from_credentials(creds).unwrap();
            let mut server = SaslSession::start(MechanismName::ScramSha1, &accounts, rng);
            let first = client.initial();
            let SaslStep::Challenge(ch) = server.step(&first) else {
                panic!("expected a challenge")
            };
            let resp = client.response(&ch).unwrap();
            match server.step(&resp) {
                SaslStep::Success(who, extra) => {
                    assert!(ok, "wrong password accepted");
                    assert_eq!(who, Authenticated::User("bob".into()));
                    client.success(&extra).unwrap();
                }
                SaslStep::Failure(cond) => {
                    assert!(!ok, "right password refused");
                    assert_eq!(cond, "not-authorized");
                }
                SaslStep::Challenge(_) => panic!("unexpected second challenge"),
            }
        }
    }

    #[test]
    fn anonymous_names_guests_uniquely() {
        let accounts = Arc::new(Accounts::default());
        let rng = &mut rng();
        let mut a = SaslSession::start(MechanismName::Anonymous, &accounts, rng);
        let mut b = SaslSession::start(MechanismName::Anonymous, &accounts, rng);
        let (SaslStep::Success(x, _), SaslStep::Success(y, _)) = (a.step(b""), b.step(b"trace"))
        else {
            panic!("anonymous refused")
        };
        assert_ne!(x, y);
        assert!(xmpp_parsers::jid::BareJid::new(&format!("{}@localhost", x.localpart())).is_ok());
    }

    #[test]
    fn bad_account_names_are_refused() {
        let key = SaltKey::random(&mut rng());
        assert!(Accounts::new([("a@b", "x")], key.clone()).is_err());
        assert!(Accounts::new([("a b", "x")], key).is_err());
    }

    #[test]
    fn scram_salts_do_not_tell_unknown_users_from_accounts() {
        let accounts = accounts([("bob", "pencil")]);
        let rng = &mut rng();
        // An unknown user gets the same salt and iteration count on every
        // attempt, as an account does...
        let first = scram_salt(&accounts, rng, "mallory");
        assert_eq!(scram_salt(&accounts, rng, "mallory"), first);
        assert_eq!(
            scram_salt(&accounts, rng, "bob"),
            scram_salt(&accounts, rng, "bob")
        );
        // ...its own, not another name's...
        let other = scram_salt(&accounts, rng, "eve");
        assert_ne!(other.0, first.0);
        assert_ne!(scram_salt(&accounts, rng, "bob").0, first.0);
        // ...of the same length and with the same count as an account's.
        let bob = scram_salt(&accounts, rng, "bob");
        assert_eq!(bob.0.len(), first.0.len());
        assert_eq!(bob.1, first.1);
        assert_eq!(first.1, SCRAM_ITERATIONS.to_string());
        // And the exchange still runs to its end and fails there, like a
        // wrong password.
        let mut server = SaslSession::start(MechanismName::ScramSha1, &accounts, rng);
        let SaslStep::Challenge(ch) = server.step(b"n,,n=mallory,r=abc") else {
            panic!("expected a challenge")
        };
        let ch = String::from_utf8(ch).unwrap();
        let nonce = scram_attrs(&ch)["r"].to_string();
        let last = format!("c=biws,r={nonce},p={}", B64.encode([0u8; 20]));
        assert_eq!(
            server.step(last.as_bytes()),
            SaslStep::Failure("not-authorized")
        );
    }

    #[test]
    fn an_account_gets_the_salt_of_its_name_under_the_key() {
        // Salts follow the key, not the order or the time of creation:
        // the same key gives the same salts (a kept key keeps them across
        // restarts), another key other ones.
        let key = SaltKey::random(&mut rng());
        let a = Arc::new(Accounts::new([("bob", "pencil")], key.clone()).unwrap());
        let b = Arc::new(Accounts::new([("bob", "pencil")], key).unwrap());
        let c = accounts([("bob", "pencil")]);
        let other = Arc::new(
            Accounts::new(
                [("bob", "pencil")],
                SaltKey::random(&mut StdRng::seed_from_u64(8)),
            )
            .unwrap(),
        );
        let rng = &mut rng();
        assert_eq!(scram_salt(&a, rng, "bob"), scram_salt(&b, rng, "bob"));
        assert_eq!(scram_salt(&a, rng, "bob"), scram_salt(&c, rng, "bob"));
        assert_ne!(scram_salt(&a, rng, "bob"), scram_salt(&other, rng, "bob"));
    }

    #[test]
    fn the_salt_key_is_kept_in_the_data_directory() {
        let dir = std::env::temp_dir().join(format!(
            "confab-salt-key-{}-{:x}",
            std::process::id(),
            rand::random::<u64>()
        ));
        let first = SaltKey::kept_in(&dir).unwrap();
        let again = SaltKey::kept_in(&dir).unwrap();
        assert_eq!(first.0, again.0, "the kept key is read back");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.join(SALT_KEY_FILE))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o077, 0, "readable by its owner only");
        }
        std::fs::write(dir.join(SALT_KEY_FILE), b"short").unwrap();
        assert!(SaltKey::kept_in(&dir).is_err(), "a damaged key is refused");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_seeded_generator_gives_the_same_exchange() {
        let accounts = accounts([("bob", "pencil")]);
        let challenge = |seed| {
            let mut rng = StdRng::seed_from_u64(seed);
            let mut s = SaslSession::start(MechanismName::ScramSha1, &accounts, &mut rng);
            s.step(b"n,,n=bob,r=abc")
        };
        assert_eq!(challenge(1), challenge(1));
        assert_ne!(challenge(1), challenge(2));
    }
}
