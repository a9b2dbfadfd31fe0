//! `linkcard scp11 …`: CA keys, OCE certificates, card personalization and secured commands.

use std::path::PathBuf;

use anyhow::Context as _;
use apdu_spec::iso::Select;
use apdu_spec::scp11::cert::{self, Certificate, Role};
use apdu_spec::scp11::session::SecurityLevel;
use apdu_spec::{StatusWord, aid};
use card_client::card_manager::CardManagerSession;
use card_client::pcsc_channel::{DEFAULT_CARD_WAIT, PcscChannel};
use card_client::scp11::{self, Anchor, Authority, Personalization};
use card_client::{CardChannel as _, hex, keyfile};
use clap::{Args, Subcommand, ValueEnum};

use crate::{EXIT_FAILED, EXIT_OK};

pub const SCP11_AFTER_HELP: &str = "\
A typical sequence, on a card before issuance in reader 0 (see docs/SECURE-CHANNEL.md):
    linkcard scp11 ca --out card-ca.key                  # certifies cards
    linkcard scp11 ca --out issuer-ca.key                # certifies the issuer's systems
    linkcard scp11 issue --ca issuer-ca.key --role issuer --subject \"issuer system\" --out issuer
    linkcard scp11 personalize -r 0 --card-ca card-ca.key --anchor issuer-ca.key
    linkcard scp11 send -r 0 --card-ca card-ca.key --oce issuer 80F24002024F0000

Keys are PEM files as OpenSSL writes them (PKCS#8 private keys, SPKI public keys); a CA goes by the first 20
bytes of the SHA-256 of its public key. Files are never overwritten.";

#[derive(Debug, Subcommand)]
pub enum Scp11Command {
    /// Create a CA key (PKCS#8 PEM, readable by its owner only) and print its identifier.
    Ca {
        /// Where to write the key (must not exist).
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
    },
    /// Create an off-card entity: a key pair and its GP certificate signed by a CA, with a role.
    Issue(IssueArgs),
    /// Print a GP certificate's fields; with --ca, verify it too.
    Show {
        /// The certificate (binary 7F21, as `issue` writes it).
        certificate: PathBuf,
        /// The CA key (public or private PEM) to verify the signature against.
        #[arg(long, value_name = "FILE")]
        ca: Option<PathBuf>,
    },
    /// Personalize a security domain on a card: key pair generated on the card, certificate, trust anchors.
    Personalize(PersonalizeArgs),
    /// Open an SCP11 session with the selected security domain and send APDUs inside it.
    Send(SendArgs),
}

/// The roles an OCE certificate can carry (`--role`); their names are [`Role::name`]'s.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum OceRole {
    /// The card issuer's personalization system: content management on the card manager.
    Issuer,
    /// The bank system (ATM, bank back end): the bank applet.
    BankAtm,
    /// The credit system (POS, credit back end): the credit applet.
    CreditPos,
    /// The bank, certified by the credit system, storing tokens into the credit applet.
    TokenDelivery,
}

impl From<OceRole> for Role {
    fn from(role: OceRole) -> Self {
        match role {
            OceRole::Issuer => Role::Issuer,
            OceRole::BankAtm => Role::BankAtm,
            OceRole::CreditPos => Role::CreditPos,
            OceRole::TokenDelivery => Role::TokenDelivery,
        }
    }
}

/// The protections of a session (`--level`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Level {
    /// C-MAC only.
    Mac,
    /// C-MAC and C-DEC.
    MacEnc,
    /// C-MAC and R-MAC.
    MacRmac,
    /// C-MAC, C-DEC, R-MAC and R-ENC.
    Full,
}

impl Level {
    fn security_level(self) -> SecurityLevel {
        match self {
            Self::Mac => SecurityLevel::MAC,
            Self::MacEnc => SecurityLevel::MAC_ENC,
            Self::MacRmac => SecurityLevel::MAC_RMAC,
            Self::Full => SecurityLevel::FULL,
        }
    }

    /// The name on the command line (`mac-enc`).
    fn name(self) -> String {
        self.to_possible_value()
            .map_or_else(|| format!("{self:?}"), |value| value.get_name().to_owned())
    }
}

#[derive(Debug, Args)]
pub struct IssueArgs {
    /// The CA key (private, PEM) that signs the certificate.
    #[arg(long, value_name = "FILE")]
    ca: PathBuf,
    /// What the certificate lets its holder do on a card.
    #[arg(long, value_enum)]
    role: OceRole,
    /// The subject: who holds the key (1-20 bytes of text).
    #[arg(long)]
    subject: String,
    /// Days of validity from today.
    #[arg(long, default_value_t = 365, value_parser = clap::value_parser!(u32).range(1..=36_500))]
    days: u32,
    /// Prefix of the files to write: PREFIX.key (private key) and PREFIX.cert (certificate); neither may exist.
    #[arg(long, value_name = "PREFIX")]
    out: PathBuf,
}

#[derive(Debug, Args)]
pub struct ReaderArgs {
    /// The PC/SC reader (number, name, or unique part of a name).
    #[arg(long, short = 'r')]
    reader: String,
    /// How long to wait for a card, in seconds.
    #[arg(long, default_value_t = DEFAULT_CARD_WAIT.as_secs_f64(), value_name = "SECONDS")]
    wait: f64,
}

impl ReaderArgs {
    fn open(&self) -> anyhow::Result<PcscChannel> {
        crate::readers::open(&self.reader, self.wait)
    }
}

#[derive(Debug, Args)]
pub struct PersonalizeArgs {
    #[command(flatten)]
    reader: ReaderArgs,
    /// The card CA key (private, PEM): it certifies the key the card generates.
    #[arg(long, value_name = "FILE")]
    card_ca: PathBuf,
    /// A CA (public or private PEM) whose OCE certificates the domain will accept; repeat for up to 3.
    #[arg(long = "anchor", value_name = "FILE", required = true)]
    anchors: Vec<PathBuf>,
    /// Personalize this instance's security domain (AID in hex) instead of the card manager's.
    #[arg(long, value_name = "AID")]
    instance: Option<String>,
    /// The domain's subject identifier in its certificate (1-20 bytes of text).
    #[arg(long, default_value = "linkcard card")]
    subject: String,
    /// Days of validity of the domain's certificate.
    #[arg(long, default_value_t = 1826, value_parser = clap::value_parser!(u32).range(1..=36_500))]
    days: u32,
    /// Once the card is issued (SECURED), personalization goes through an issuer session: the OCE's files
    /// prefix (PREFIX.key, PREFIX.cert), with an issuer-role certificate.
    #[arg(long, value_name = "PREFIX")]
    oce: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct SendArgs {
    #[command(flatten)]
    reader: ReaderArgs,
    /// The card CA key (public or private PEM): the card's certificate must verify against it.
    #[arg(long, value_name = "FILE")]
    card_ca: PathBuf,
    /// SCP11a: the OCE's files prefix (PREFIX.key, PREFIX.cert).
    #[arg(long, value_name = "PREFIX", required_unless_present = "scp11b")]
    oce: Option<PathBuf>,
    /// SCP11b instead: the card authenticates, the host stays anonymous (no role).
    #[arg(long, conflicts_with = "oce")]
    scp11b: bool,
    /// Protections: C-MAC only, with C-DEC, with R-MAC, or all four.
    #[arg(long, value_enum, default_value_t = Level::Full,)]
    level: Level,
    /// Select this application (AID in hex) first; by default the card manager.
    #[arg(long, value_name = "AID")]
    select: Option<String>,
    /// Command APDUs in hex (spaces allowed inside quotes), sent unsecured-form: the session secures them.
    #[arg(required = true, value_name = "APDU")]
    apdus: Vec<String>,
}

pub fn run_command(command: Scp11Command) -> anyhow::Result<u8> {
    match command {
        Scp11Command::Ca { out } => {
            let key = p256::SecretKey::from(scp11::random_scalar()?);
            keyfile::write_secret(&out, &key)?;
            let authority = Authority::from_key(&key);
            println!("CA key written to {}", out.display());
            println!("identifier (CA-KLOC): {}", hex::spaced(&authority.id));
            Ok(EXIT_OK)
        }
        Scp11Command::Issue(args) => issue(&args),
        Scp11Command::Show { certificate, ca } => {
            let bytes = std::fs::read(&certificate)
                .with_context(|| format!("cannot read {}", certificate.display()))?;
            let parsed = show_certificate(&bytes)?;
            if let Some(ca) = ca {
                let anchor = Anchor::from_public_key(&keyfile::read_public(&ca)?);
                match parsed.verify(&anchor.issuer()?, scp11::date_from_today(0)) {
                    Ok(()) => println!("verified against {} as of today", ca.display()),
                    Err(e) => {
                        println!("NOT valid against {}: {e}", ca.display());
                        return Ok(EXIT_FAILED);
                    }
                }
            }
            Ok(EXIT_OK)
        }
        Scp11Command::Personalize(args) => personalize(&args),
        Scp11Command::Send(args) => send_secured(&args),
    }
}

fn issue(args: &IssueArgs) -> anyhow::Result<u8> {
    if args.subject.is_empty() || args.subject.len() > 20 {
        anyhow::bail!("--subject must be 1 to 20 bytes");
    }
    let authority = Authority::from_key(&keyfile::read_secret(&args.ca)?);
    let (key_path, cert_path) = scp11::oce_paths(&args.out);
    for path in [&key_path, &cert_path] {
        if path.exists() {
            anyhow::bail!("{} exists: choose another --out", path.display());
        }
    }
    let oce = authority.issue_oce(
        args.subject.as_bytes(),
        args.role.into(),
        scp11::date_from_today(0),
        scp11::date_from_today(i64::from(args.days)),
    )?;
    keyfile::write_secret(&key_path, &p256::SecretKey::from(oce.static_key))?;
    let certificate = oce.chain.first().context("no certificate")?;
    keyfile::write_new(&cert_path, certificate, 0o644)?;
    println!("{} and {} written", key_path.display(), cert_path.display());
    show_certificate(certificate)?;
    Ok(EXIT_OK)
}

fn parse_hex(what: &str, text: &str) -> anyhow::Result<Vec<u8>> {
    let digits: String = text.chars().filter(|c| !c.is_whitespace()).collect();
    ::hex::decode(digits).map_err(|_| anyhow::anyhow!("{what}: \"{text}\" is not hex bytes"))
}

fn identifier_text(id: &[u8]) -> String {
    if id.iter().all(|b| b.is_ascii_graphic() || *b == b' ') {
        format!("\"{}\" ({})", String::from_utf8_lossy(id), hex::spaced(id))
    } else {
        hex::spaced(id)
    }
}

fn show_certificate(bytes: &[u8]) -> anyhow::Result<Certificate<'_>> {
    let (certificate, rest) = Certificate::parse(bytes).context("not a GP certificate")?;
    if !rest.is_empty() {
        anyhow::bail!("{} bytes after the certificate", rest.len());
    }
    let usage = match certificate.key_usage() {
        cert::KEY_AGREEMENT => "key agreement (0080)",
        cert::CERTIFICATE_SIGNING => "certificate signing (0082)",
        _ => "other",
    };
    println!("serial:      {}", hex::spaced(certificate.serial()));
    println!("issuer id:   {}", identifier_text(certificate.ca_kloc_id()));
    println!("subject:     {}", identifier_text(certificate.subject_id()));
    println!("key usage:   {usage}");
    if let Some(effective) = certificate.effective() {
        println!("effective:   {effective}");
    }
    println!("expires:     {}", certificate.expiration());
    println!(
        "role:        {}",
        certificate.role().map_or("none", |r| r.name())
    );
    println!(
        "public key:  {}",
        hex::spaced(certificate.public_key_bytes())
    );
    Ok(certificate)
}

/// SELECT by AID (`00 A4 04 00 Lc AID 00`).
fn select_command(aid: &[u8]) -> anyhow::Result<Vec<u8>> {
    Select::aid(aid)
        .to_command()
        .to_short()
        .with_context(|| format!("cannot SELECT {}", hex::spaced(aid)))
}

fn personalize(args: &PersonalizeArgs) -> anyhow::Result<u8> {
    if args.subject.is_empty() || args.subject.len() > 20 {
        anyhow::bail!("--subject must be 1 to 20 bytes");
    }
    let card_ca = Authority::from_key(&keyfile::read_secret(&args.card_ca)?);
    let anchors = args
        .anchors
        .iter()
        .map(|path| keyfile::read_public(path).map(|key| Anchor::from_public_key(&key)))
        .collect::<Result<Vec<_>, _>>()?;
    let instance = args
        .instance
        .as_deref()
        .map(|aid| parse_hex("--instance", aid))
        .transpose()?;
    let mut card_manager =
        CardManagerSession::select(args.reader.open()?).context("SELECT card manager")?;
    let personalization = Personalization {
        instance: instance.as_deref(),
        card_authority: &card_ca,
        subject: args.subject.as_bytes(),
        anchors: &anchors,
        today: scp11::date_from_today(0),
        expiration: scp11::date_from_today(i64::from(args.days)),
    };
    let key = match &args.oce {
        None => card_manager.personalize(&personalization),
        Some(prefix) => {
            let oce = scp11::load_oce(prefix)?;
            card_manager
                .open_scp11a(
                    &card_ca.issuer(),
                    scp11::date_from_today(0),
                    &oce,
                    SecurityLevel::FULL,
                )?
                .personalize(&personalization)
        }
    }
    .context(
        "personalization failed (a card after issuance needs --oce with an issuer certificate)",
    )?;
    println!(
        "personalized the security domain of {}",
        instance
            .as_deref()
            .map_or("the card manager".into(), hex::spaced)
    );
    println!("its public key: {}", hex::spaced(&key));
    println!("trust anchors:  {}", anchors.len());
    Ok(EXIT_OK)
}

fn send_secured(args: &SendArgs) -> anyhow::Result<u8> {
    let level = args.level.security_level();
    let apdus = args
        .apdus
        .iter()
        .map(|apdu| parse_hex("APDU", apdu))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let card_ca = Anchor::from_public_key(&keyfile::read_public(&args.card_ca)?);
    let oce = args.oce.as_deref().map(scp11::load_oce).transpose()?;
    let mut channel = args.reader.open()?;
    let aid = match &args.select {
        Some(aid) => parse_hex("--select", aid)?,
        None => aid::CARD_MANAGER.as_bytes().to_vec(),
    };
    let answer = channel.transmit(&select_command(&aid)?).context("SELECT")?;
    // The channel completes 61xx itself: what counts is the final status word, success or a warning (6283
    // from a locked card manager still selects it).
    let selected = match answer.as_slice() {
        [.., sw1, sw2] => {
            let status = StatusWord::from_bytes(*sw1, *sw2);
            status.is_success() || status.is_warning()
        }
        _ => false,
    };
    if !selected {
        anyhow::bail!(
            "SELECT {} answered {}",
            hex::spaced(&aid),
            hex::spaced(&answer)
        );
    }
    let card_key = scp11::card_key(&mut channel, &card_ca.issuer()?, scp11::date_from_today(0))
        .context("the card's certificate")?;
    let mut session = match &oce {
        Some(oce) => scp11::open_scp11a(&mut channel, &card_key, oce, level, None)?,
        None => scp11::open_scp11b(&mut channel, &card_key, level)?,
    };
    println!(
        "SCP11{} session open with {} ({})",
        if oce.is_some() { "a" } else { "b" },
        hex::spaced(&aid),
        args.level.name()
    );
    let mut all_succeeded = true;
    for apdu in &apdus {
        println!("> {}", hex::spaced(apdu));
        let response = session.transmit_secured(apdu)?;
        let (data, sw) = response.split_at(response.len().saturating_sub(2));
        let status = match sw {
            [sw1, sw2] => StatusWord::from_bytes(*sw1, *sw2),
            _ => StatusWord::UNKNOWN,
        };
        if !data.is_empty() {
            println!("< {}", hex::spaced(data));
        }
        println!("< {status}");
        all_succeeded &= status.is_success() || status.is_warning();
    }
    Ok(if all_succeeded { EXIT_OK } else { EXIT_FAILED })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn role_names_are_the_certificate_role_names() {
        for role in OceRole::value_variants() {
            let name = role.to_possible_value().unwrap();
            assert_eq!(name.get_name(), Role::from(*role).name());
        }
    }

    #[test]
    fn level_names() {
        let names: Vec<String> = Level::value_variants().iter().map(|l| l.name()).collect();
        assert_eq!(names, ["mac", "mac-enc", "mac-rmac", "full"]);
        assert_eq!(Level::MacEnc.security_level(), SecurityLevel::MAC_ENC);
    }
}
