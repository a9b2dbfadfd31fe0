//! Plays the steps of one script: plain steps on the channel, and between `open` and `close` (or a reset or power
//! step) every `>` through a real [`Scp11Session`], whose plain responses the `<` patterns match. Captures are
//! kept as the script's variables for the steps after them.

use apdu_spec::StatusWord;
use apdu_spec::scp11::cert::Date;
use card_client::card_manager::CardManagerError;
use card_client::scp11::{
    self, Personalization, Scp11Error, Scp11Session, card_key, open_scp11a, open_scp11b,
};
use card_client::{CardChannel, ChannelError, hex};

use super::{ExpectedResponse, Failure};
use crate::fixtures::Keyring;
use crate::script::{CommandTemplate, Expectation, SessionVariant, Step, StepKind, Variables};

/// Expiration of the certificates `personalize` has the card CA issue: far enough that no test run outlives it.
const CERTIFICATE_EXPIRATION: Date = Date([0x20, 0x99, 0x12, 0x31]);

/// A step that failed (boxed: it travels up through every step function).
type Failed = Box<Failure>;

/// A session over the script's channel.
type Session<'c> = Scp11Session<&'c mut dyn CardChannel>;

/// Where a step's commands go.
enum Link<'a, 'c> {
    Plain(&'a mut dyn CardChannel),
    Secured(&'a mut Session<'c>),
}

/// Runs `steps` on `channel`; returns the number of `>` commands sent and the step that failed, if one did.
pub(super) fn run_steps(steps: &[Step], channel: &mut dyn CardChannel) -> (usize, Option<Failure>) {
    let mut run = Run {
        steps,
        next: 0,
        variables: Variables::new(),
        exchanges: 0,
    };
    let failure = run.plain(channel).err().map(|failed| *failed);
    (run.exchanges, failure)
}

struct Run<'s> {
    steps: &'s [Step],
    /// The next step to run.
    next: usize,
    variables: Variables,
    exchanges: usize,
}

impl<'s> Run<'s> {
    /// Runs steps on the plain channel to the end; each `open` that opens a session runs the steps after it in
    /// the session.
    fn plain(&mut self, channel: &mut dyn CardChannel) -> Result<(), Failed> {
        while let Some(step) = self.steps.get(self.next) {
            self.next += 1;
            match &step.kind {
                StepKind::Open {
                    variant,
                    level,
                    keys,
                    expected,
                } => {
                    let opened = open(&mut *channel, variant, *level, keys);
                    if let Some(mut session) = self.opened(step, expected.as_ref(), opened)? {
                        self.secured(&mut session)?;
                    }
                }
                // The parser lets `close` stand only where a session is open: here it has nothing to do.
                StepKind::Close => {}
                _ => self.step(step, Link::Plain(&mut *channel))?,
            }
        }
        Ok(())
    }

    /// Runs steps through `session` until `close`, a reset or power step (run on the channel: they end the
    /// session), the next `open` (left to [`Self::plain`]) or the end.
    fn secured(&mut self, session: &mut Session<'_>) -> Result<(), Failed> {
        while let Some(step) = self.steps.get(self.next) {
            match &step.kind {
                StepKind::Open { .. } => return Ok(()),
                StepKind::Close => {
                    self.next += 1;
                    return Ok(());
                }
                StepKind::Reset { .. } | StepKind::PowerOn { .. } | StepKind::PowerOff => {
                    self.next += 1;
                    return self.step(step, Link::Plain(&mut **session.inner()));
                }
                _ => {
                    self.next += 1;
                    self.step(step, Link::Secured(session))?;
                }
            }
        }
        Ok(())
    }

    /// Checks the outcome of an `open` against its `<` line; returns the session when it opened.
    fn opened<'c>(
        &mut self,
        step: &Step,
        expected: Option<&Expectation>,
        opened: Result<Session<'c>, Scp11Error>,
    ) -> Result<Option<Session<'c>>, Failed> {
        let refusal = |error: &Scp11Error| match error {
            Scp11Error::Refused { status, .. } => Some(*status),
            _ => None,
        };
        let result = opened
            .as_ref()
            .map(|_| ())
            .map_err(|e| Refusal::of(e, refusal(e)));
        self.outcome(step, expected, result)?;
        Ok(opened.ok())
    }

    /// Checks what a handshake or personalization came to against the step's optional `<` line, which the status
    /// word must match: 90 00 when it succeeded, the refusal's otherwise. Without a `<` line it must succeed.
    fn outcome(
        &mut self,
        step: &Step,
        expected: Option<&Expectation>,
        result: Result<(), Refusal>,
    ) -> Result<(), Failed> {
        let status = match &result {
            Ok(()) => StatusWord::SUCCESS,
            Err(Refusal {
                status: Some(status),
                ..
            }) if expected.is_some() => *status,
            Err(refusal) => {
                return Err(failure(step, step.kind.to_string(), refusal.reason.clone()));
            }
        };
        self.check(
            step,
            step.kind.to_string(),
            expected,
            status.to_bytes().to_vec(),
            true,
        )
        .map_err(|mut failure| {
            if let Err(refusal) = result {
                failure.reason = format!("{}: {}", refusal.reason, failure.reason);
            }
            failure
        })
    }

    fn step(&mut self, step: &Step, link: Link<'_, '_>) -> Result<(), Failed> {
        let text = step.kind.to_string();
        match (&step.kind, link) {
            (StepKind::Exchange { command, expected }, link) => {
                self.exchange(step, command, expected, link)
            }
            (
                StepKind::Personalize {
                    instance,
                    keys,
                    expected,
                },
                link,
            ) => {
                let result = self.personalize(step, instance.as_ref(), keys, link)?;
                let result = result.map(drop).map_err(|e| Refusal::of(&e, e.status()));
                self.outcome(step, expected.as_ref(), result)
            }
            (StepKind::Reset { expected_atr }, Link::Plain(channel)) => {
                let atr = channel
                    .reset()
                    .map_err(|e| channel_error(step, &text, &e))?;
                self.check(step, text, expected_atr.as_ref(), atr, false)
            }
            (StepKind::PowerOn { expected_atr }, Link::Plain(channel)) => {
                let atr = channel
                    .power_on()
                    .map_err(|e| channel_error(step, &text, &e))?;
                self.check(step, text, expected_atr.as_ref(), atr, false)
            }
            (StepKind::PowerOff, Link::Plain(channel)) => channel
                .power_off()
                .map_err(|e| channel_error(step, &text, &e)),
            // `plain` and `secured` route the other steps themselves.
            _ => Ok(()),
        }
    }

    fn exchange(
        &mut self,
        step: &Step,
        command: &CommandTemplate,
        expected: &Expectation,
        link: Link<'_, '_>,
    ) -> Result<(), Failed> {
        self.exchanges += 1;
        let bytes = self.expand(step, command)?;
        let text = format!("> {}", hex::spaced(&bytes));
        let received = match link {
            Link::Plain(channel) => channel
                .transmit(&bytes)
                .map_err(|e| channel_error(step, &text, &e))?,
            Link::Secured(session) => session
                .transmit_secured(&bytes)
                .map_err(|e| failure(step, text.clone(), card_client::error_chain(&e)))?,
        };
        self.check(step, text, Some(expected), received, true)
    }

    fn expand(&self, step: &Step, command: &CommandTemplate) -> Result<Vec<u8>, Failed> {
        let bytes = command
            .expand(&self.variables)
            .map_err(|e| failure(step, step.kind.to_string(), e.to_string()))?;
        if bytes.is_empty() {
            let reason = "the command is empty once its variables are expanded".to_owned();
            return Err(failure(step, step.kind.to_string(), reason));
        }
        Ok(bytes)
    }

    /// Runs `card_client::scp11::personalize` through `link`; the card's refusals come back as the result, for
    /// the step's `<` line to judge.
    fn personalize(
        &self,
        step: &Step,
        instance: Option<&CommandTemplate>,
        keys: &Keyring,
        link: Link<'_, '_>,
    ) -> Result<Result<[u8; 65], CardManagerError>, Failed> {
        let instance = instance.map(|aid| self.expand(step, aid)).transpose()?;
        let anchors = [keys.oce_ca.clone()];
        let personalization = Personalization {
            instance: instance.as_deref(),
            card_authority: &keys.card_ca,
            subject: match instance {
                Some(_) => b"conformance applet",
                None => b"conformance card",
            },
            anchors: &anchors,
            today: scp11::date_from_today(0),
            expiration: CERTIFICATE_EXPIRATION,
        };
        Ok(match link {
            Link::Plain(channel) => scp11::personalize(&mut &mut *channel, &personalization),
            Link::Secured(session) => scp11::personalize(session, &personalization),
        })
    }

    /// Checks what a step got against its `<` line and keeps the line's captures; `is_response` tells a
    /// response (or a status word) from an ATR.
    fn check(
        &mut self,
        step: &Step,
        text: String,
        expected: Option<&Expectation>,
        received: Vec<u8>,
        is_response: bool,
    ) -> Result<(), Failed> {
        let Some(expected) = expected else {
            return Ok(());
        };
        match expected.pattern.check(&received, &self.variables) {
            Ok(captures) => {
                for (name, value) in captures {
                    self.variables.set(&name, value);
                }
                Ok(())
            }
            Err(mismatch) => {
                let named =
                    |status: Option<StatusWord>| status.filter(|_| is_response).map(Into::into);
                let actual_status = match received.as_slice() {
                    [.., sw1, sw2] => Some(StatusWord::from_bytes(*sw1, *sw2)),
                    _ => None,
                };
                let mut failure = failure(step, text, mismatch.to_string());
                failure.expected = Some(ExpectedResponse {
                    line: expected.line,
                    pattern: expected.pattern.source().to_owned(),
                    status: named(expected.pattern.exact_status_word()),
                });
                failure.actual = Some(hex::spaced(&received));
                failure.actual_status = named(actual_status);
                Err(failure)
            }
        }
    }
}

/// GET DATA BF21 verified against the keys' card CA, then the handshake.
fn open<'c>(
    channel: &'c mut dyn CardChannel,
    variant: &SessionVariant,
    level: apdu_spec::scp11::session::SecurityLevel,
    keys: &Keyring,
) -> Result<Session<'c>, Scp11Error> {
    let mut channel = channel;
    let key = card_key(
        &mut channel,
        &keys.card_ca.issuer(),
        scp11::date_from_today(0),
    )?;
    match variant {
        SessionVariant::Scp11a(oce) => open_scp11a(channel, &key, &oce.credentials, level, None),
        SessionVariant::Scp11b => open_scp11b(channel, &key, level),
    }
}

/// A failure of `step` with only a reason.
fn failure(step: &Step, text: String, reason: String) -> Failed {
    Box::new(Failure {
        line: Some(step.line),
        source: step.source.as_ref().map(ToString::to_string),
        step: text,
        expected: None,
        actual: None,
        actual_status: None,
        reason,
    })
}

/// A failure of `step` because the channel failed underneath.
fn channel_error(step: &Step, text: &str, error: &ChannelError) -> Failed {
    let mut failure = channel_failure(Some(step.line), text.to_owned(), error);
    failure.source = step.source.as_ref().map(ToString::to_string);
    Box::new(failure)
}

/// A failure because the channel failed underneath.
pub(super) fn channel_failure(line: Option<usize>, step: String, error: &ChannelError) -> Failure {
    Failure {
        line,
        source: None,
        step,
        expected: None,
        actual: None,
        actual_status: None,
        reason: format!("channel error: {}", card_client::error_chain(error)),
    }
}

/// Why a handshake or personalization failed: the card's status word when the card refused it, and the
/// whole error chain to report.
#[derive(Debug)]
struct Refusal {
    status: Option<StatusWord>,
    reason: String,
}

impl Refusal {
    fn of(error: &(dyn std::error::Error + 'static), status: Option<StatusWord>) -> Self {
        Self {
            status,
            reason: card_client::error_chain(error),
        }
    }
}
