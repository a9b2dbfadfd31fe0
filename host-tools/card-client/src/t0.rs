//! Completing an exchange the way T=0 needs: the PC/SC channel runs it for T=0 cards, and the secure channel for
//! every command it sends (a secured response may come back as 61xx on any protocol).

use apdu_spec::ins;

use crate::channel::ChannelError;

/// Completes one exchange the way T=0 needs: 61xx → GET RESPONSE for xx bytes (repeatedly, concatenating),
/// 6Cxx → the same command again with Le = xx. `send` performs one raw exchange.
pub fn complete_t0_exchange(
    apdu: &[u8],
    mut send: impl FnMut(&[u8]) -> Result<Vec<u8>, ChannelError>,
) -> Result<Vec<u8>, ChannelError> {
    // Bounds the loop against a card that never stops answering 61xx/6Cxx.
    const MAX_ROUNDS: usize = 512;
    let mut response = send(apdu)?;
    let mut data = Vec::new();
    for _ in 0..MAX_ROUNDS {
        let (body, sw) = split_status(&response)?;
        match sw {
            [0x6C, le] => {
                let mut again = apdu.to_vec();
                let retried = with_short_le(&mut again, le);
                if !retried {
                    break;
                }
                response = send(&again)?;
            }
            [0x61, le] => {
                data.extend_from_slice(body);
                // GET RESPONSE is the transmission protocol's, not an application's command: the card answers
                // it for whatever came before, so it has no typed encoder of its own.
                response = send(&[0x00, ins::GET_RESPONSE, 0x00, 0x00, le])?;
            }
            _ => break,
        }
    }
    data.extend_from_slice(&response);
    Ok(data)
}

fn split_status(response: &[u8]) -> Result<(&[u8], [u8; 2]), ChannelError> {
    match response {
        [body @ .., sw1, sw2] => Ok((body, [*sw1, *sw2])),
        _ => Err(ChannelError::ResponseTooShort {
            len: response.len(),
        }),
    }
}

/// Replaces (or adds) the short Le of `apdu`; false when the APDU is extended and cannot be fixed this way.
fn with_short_le(apdu: &mut Vec<u8>, le: u8) -> bool {
    match apdu_spec::CommandView::parse(apdu) {
        Ok(view) if !view.is_extended() => {
            let data_end = if view.data().is_empty() {
                4
            } else {
                5 + view.data().len()
            };
            apdu.truncate(data_end);
            apdu.push(le);
            true
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // The exchanges below are T=0 transcripts, byte for byte as the reader carries them (a case 1 command that
    // gets Le added, GET RESPONSE with the 61xx length): the bytes are what is under test, so they stay raw.

    /// A scripted card: answers each expected command with the paired response.
    fn scripted(
        exchanges: Vec<(Vec<u8>, Vec<u8>)>,
    ) -> impl FnMut(&[u8]) -> Result<Vec<u8>, ChannelError> {
        let mut exchanges = exchanges.into_iter();
        move |apdu: &[u8]| {
            let (expected, response) = exchanges.next().expect("no more exchanges scripted");
            assert_eq!(apdu, expected.as_slice());
            Ok(response)
        }
    }

    #[test]
    fn t0_follows_several_61xx_and_keeps_the_final_status() {
        let send = scripted(vec![
            (vec![0x80, 0x12, 0x01, 0x2C], vec![0x61, 0x00]),
            (
                vec![0x00, 0xC0, 0x00, 0x00, 0x00],
                [vec![1; 256], vec![0x61, 0x2C]].concat(),
            ),
            (
                vec![0x00, 0xC0, 0x00, 0x00, 0x2C],
                [vec![2; 44], vec![0x63, 0x10]].concat(),
            ),
        ]);
        let response = complete_t0_exchange(&[0x80, 0x12, 0x01, 0x2C], send).unwrap();
        assert_eq!(response.len(), 256 + 44 + 2);
        assert_eq!(&response[254..258], &[1, 1, 2, 2]);
        assert_eq!(&response[300..], &[0x63, 0x10]);
    }

    #[test]
    fn t0_repeats_with_the_le_of_6cxx_then_follows_61xx() {
        let send = scripted(vec![
            (
                vec![0x80, 0x10, 0x00, 0x00, 0x02, 0xAA, 0xBB, 0x05],
                vec![0x6C, 0x02],
            ),
            (
                vec![0x80, 0x10, 0x00, 0x00, 0x02, 0xAA, 0xBB, 0x02],
                vec![0x61, 0x02],
            ),
            (
                vec![0x00, 0xC0, 0x00, 0x00, 0x02],
                vec![0xAA, 0xBB, 0x90, 0x00],
            ),
        ]);
        let response =
            complete_t0_exchange(&[0x80, 0x10, 0x00, 0x00, 0x02, 0xAA, 0xBB, 0x05], send).unwrap();
        assert_eq!(response, vec![0xAA, 0xBB, 0x90, 0x00]);
    }

    #[test]
    fn t0_adds_le_to_a_case_1_command_on_6cxx() {
        let send = scripted(vec![
            (vec![0x80, 0x14, 0x00, 0x00], vec![0x6C, 0x03]),
            (
                vec![0x80, 0x14, 0x00, 0x00, 0x03],
                vec![0x00, 0x03, 0x00, 0x90, 0x00],
            ),
        ]);
        assert_eq!(
            complete_t0_exchange(&[0x80, 0x14, 0x00, 0x00], send).unwrap(),
            vec![0, 3, 0, 0x90, 0x00]
        );
    }

    #[test]
    fn t0_passes_errors_and_short_answers_through() {
        let send = scripted(vec![(vec![0x00, 0xA4, 0x04, 0x00], vec![0x6A, 0x82])]);
        assert_eq!(
            complete_t0_exchange(&[0x00, 0xA4, 0x04, 0x00], send).unwrap(),
            vec![0x6A, 0x82]
        );
        let send = scripted(vec![(vec![0x00, 0xA4, 0x04, 0x00], vec![0x90])]);
        assert!(matches!(
            complete_t0_exchange(&[0x00, 0xA4, 0x04, 0x00], send),
            Err(ChannelError::ResponseTooShort { len: 1 })
        ));
    }
}
