//! The records a bulk call of Dispatch or Companies refused: read from its INVALID_ARGUMENT,
//! so that a page rejects them with their reasons and sends the rest again.

/// The batch indexes a Dispatch or Companies INVALID_ARGUMENT names (`tasks[3].title`), with
/// each one's descriptions joined: the records it refused, to reject and send the rest again.
pub fn refused_rows(status: &tonic::Status, list: &str) -> Vec<(usize, String)> {
    let mut rows: Vec<(usize, String)> = Vec::new();
    for violation in director_platform::error::field_violations(status) {
        let Some(rest) = violation.field.strip_prefix(list) else {
            continue;
        };
        let Some((index, field)) = rest.strip_prefix('[').and_then(|rest| rest.split_once(']'))
        else {
            continue;
        };
        let Ok(index) = index.parse::<usize>() else {
            continue;
        };
        let field = field.trim_start_matches('.');
        let reason = format!("{field} {}", violation.description);
        match rows.iter_mut().find(|(row, _)| *row == index) {
            Some((_, reasons)) => {
                reasons.push_str("; ");
                reasons.push_str(&reason);
            }
            None => rows.push((index, reason)),
        }
    }
    rows
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use director_platform::error::{FieldViolation, invalid_argument};

    use super::*;

    #[test]
    fn the_rows_a_bulk_refusal_names_are_found_by_index() {
        let status = invalid_argument(
            "Invalid tasks",
            vec![
                FieldViolation::new("tasks[3].title", "must not be blank"),
                FieldViolation::new("tasks[3].volume_liters", "must be 0 or more"),
                FieldViolation::new("tasks[10].window_end", "must not be before window_start"),
                FieldViolation::new("tasks", "must hold 1 to 1000 tasks"),
                FieldViolation::new("companies[1].name", "x"),
            ],
        );
        assert_eq!(
            refused_rows(&status, "tasks"),
            [
                (
                    3,
                    "title must not be blank; volume_liters must be 0 or more".to_owned()
                ),
                (10, "window_end must not be before window_start".to_owned()),
            ]
        );
    }
}
