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

use std::collections::HashMap;
use std::sync::Arc;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use hmac::{Hmac, Mac};
use rand::Rng;
use sasl::common::Identity;
use sasl::secret::{Pbkdf2Sha1, Plain as PlainSecret};
use sasl::server::mechanisms::Plain;
use sasl::server::{Mechanism, Response, Validator, ValidatorError};
use sha1::{Digest, Sha1 as Sha1Hash};

/// PBKDF2 iterations for the SCRAM secrets (RFC 7677 suggests at least 4096).
const SCRAM_ITERATIONS: u32 = 4096;

/// The configured accounts (user name -> password), with SCRAM secrets.
#[derive(Default)]
pub struct Accounts {
    accounts: HashMap<String, Account>,
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
    /// Accounts from (user, password) pairs. User names are JID
    /// localparts; invalid ones are refused.
    pub fn new<'a>(
        pairs: impl IntoIterator<Item = (&'a str, &'a str)>,
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
            let salt: [u8; 16] = rand::thread_rng().gen();
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
        Ok(Accounts { accounts })
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
    Anonymous,
    Plain(Box<dyn Mechanism + Send>),
    Scram(ScramServer),
}

impl SaslSession {
    /// Start `name` against `accounts`.
    pub fn start(name: MechanismName, accounts: &Arc<Accounts>) -> SaslSession {
        let kind = match name {
            MechanismName::Anonymous => SessionKind::Anonymous,
            MechanismName::Plain => {
                SessionKind::Plain(Box::new(Plain::new(AccountsRef(accounts.clone()))))
            }
            MechanismName::ScramSha1 => SessionKind::Scram(ScramServer::new(accounts.clone())),
        };
        SaslSession { kind }
    }

    /// Feed the client's (base64-decoded) data: the initial response or a
    /// later response.
    pub fn step(&mut self, data: &[u8]) -> SaslStep {
        match &mut self.kind {
            SessionKind::Anonymous => {
                // RFC 4505: an optional trace token of at most 255 characters.
                if data.len() > 255 * 4 || std::str::from_utf8(data).is_err() {
                    return SaslStep::Failure("malformed-request");
                }
                let node: String = format!("guest-{:016x}", rand::thread_rng().gen::<u64>());
                SaslStep::Success(Authenticated::Guest(node), Vec::new())
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
        /// `None` for an unknown user: the exchange runs to the end and
        /// fails there, so user names cannot be probed.
        salted_password: Option<Vec<u8>>,
    },
    Done,
}

impl ScramServer {
    fn new(accounts: Arc<Accounts>) -> ScramServer {
        ScramServer {
            accounts,
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
                let Some(salted) = salted_password else {
                    return SaslStep::Failure("not-authorized");
                };
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
                if !constant_time_eq(&Sha1Hash::digest(&recovered), &stored_key) {
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
        let salt: Vec<u8> = match account {
            Some(a) => a.scram_sha1.salt.clone(),
            None => rand::thread_rng().gen::<[u8; 16]>().to_vec(),
        };
        let server_nonce: String =
            format!("{}{:032x}", client_nonce, rand::thread_rng().gen::<u128>());
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
    use super::*;

    #[test]
    fn plain_accepts_right_password_and_refuses_wrong_one() {
        let accounts = Arc::new(Accounts::new([("alice", "secret")]).unwrap());
        let mut s = SaslSession::start(MechanismName::Plain, &accounts);
        assert_eq!(
            s.step(b"\0alice\0secret"),
            SaslStep::Success(Authenticated::User("alice".into()), vec![])
        );
        let mut s = SaslSession::start(MechanismName::Plain, &accounts);
        assert_eq!(
            s.step(b"\0alice\0wrong"),
            SaslStep::Failure("not-authorized")
        );
        let mut s = SaslSession::start(MechanismName::Plain, &accounts);
        assert_eq!(
            s.step(b"\0mallory\0secret"),
            SaslStep::Failure("not-authorized")
        );
        let mut s = SaslSession::start(MechanismName::Plain, &accounts);
        assert_eq!(s.step(b"garbage"), SaslStep::Failure("malformed-request"));
    }

    #[test]
    fn scram_sha1_round_trip_with_the_sasl_client() {
        use sasl::client::mechanisms::Scram as ClientScram;
        use sasl::client::Mechanism as _;
        use sasl::common::scram::Sha1;
        use sasl::common::{ChannelBinding, Credentials};
        let accounts = Arc::new(Accounts::new([("bob", "pencil")]).unwrap());
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
            let mut server = SaslSession::start(MechanismName::ScramSha1, &accounts);
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
        let mut a = SaslSession::start(MechanismName::Anonymous, &accounts);
        let mut b = SaslSession::start(MechanismName::Anonymous, &accounts);
        let (SaslStep::Success(x, _), SaslStep::Success(y, _)) = (a.step(b""), b.step(b"trace"))
        else {
            panic!("anonymous refused")
        };
        assert_ne!(x, y);
        assert!(xmpp_parsers::jid::BareJid::new(&format!("{}@localhost", x.localpart())).is_ok());
    }

    #[test]
    fn bad_account_names_are_refused() {
        assert!(Accounts::new([("a@b", "x")]).is_err());
        assert!(Accounts::new([("a b", "x")]).is_err());
    }
}
