"""Alerts as a FHIR R4 `Bundle` (type `collection`) of `DetectedIssue` resources.

Mapping (one DetectedIssue per alert):

    id                  alert_id (FHIR id: [A-Za-z0-9.-]{1,64}; a 16-hex id fits)
    identifier          system ALERT_ID_SYSTEM, value alert_id
    status              "final" once acknowledged, "preliminary" while open
    severity            critical, high → "high"; medium → "moderate"; data → "low"
    code                coding system RULE_SYSTEM, code = rule id, display = rule title;
                        text = our severity label
    patient             {"reference": "Patient/<patient_id>"}
    identifiedDateTime  triggered_on (YYYY-MM-DD)
    detail              the alert message
    evidence            [{"code": [{"coding": [rule], "text": <evidence JSON>}]}]
    mitigation          when acknowledged: action "acknowledged" (text = the note), date, author

No network and no FHIR library: the bundle is a plain dict ready for `json.dumps`.
"""

from __future__ import annotations

import uuid
from typing import Any

import polars as pl

from monitoring.alerts import RULES_BY_ID

RULE_SYSTEM = "https://ltfu.example.org/fhir/CodeSystem/alert-rule"
ALERT_ID_SYSTEM = "https://ltfu.example.org/fhir/NamingSystem/alert-id"
MITIGATION_SYSTEM = "https://ltfu.example.org/fhir/CodeSystem/alert-mitigation"
_UUID_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, ALERT_ID_SYSTEM)

FHIR_SEVERITY: dict[str, str] = {
    "critical": "high",
    "high": "high",
    "medium": "moderate",
    "data": "low",
}


def _rule_coding(rule: str) -> dict[str, str]:
    known = RULES_BY_ID.get(rule)
    return {"system": RULE_SYSTEM, "code": rule, "display": known.title if known else rule}


def alert_to_detected_issue(alert: dict[str, Any]) -> dict[str, Any]:
    """One alert row (from `evaluate_alerts` or the queue) → a DetectedIssue resource."""
    acknowledged = alert.get("status") == "acknowledged"
    triggered = alert["triggered_on"]
    issue: dict[str, Any] = {
        "resourceType": "DetectedIssue",
        "id": alert["alert_id"],
        "identifier": [{"system": ALERT_ID_SYSTEM, "value": alert["alert_id"]}],
        "status": "final" if acknowledged else "preliminary",
        "code": {
            "coding": [_rule_coding(alert["rule"])],
            "text": f"{alert['severity']}: {_rule_coding(alert['rule'])['display']}",
        },
        "severity": FHIR_SEVERITY.get(str(alert["severity"]), "low"),
        "patient": {"reference": f"Patient/{alert['patient_id']}"},
        "identifiedDateTime": triggered.isoformat()
        if hasattr(triggered, "isoformat")
        else str(triggered),
        "detail": alert["message"],
    }
    if alert.get("evidence"):
        issue["evidence"] = [
            {"code": [{"coding": [_rule_coding(alert["rule"])], "text": alert["evidence"]}]}
        ]
    if acknowledged:
        mitigation: dict[str, Any] = {
            "action": {
                "coding": [
                    {"system": MITIGATION_SYSTEM, "code": "acknowledged", "display": "Acknowledged"}
                ],
                "text": alert.get("ack_note") or "acknowledged",
            },
        }
        if alert.get("acknowledged_at"):
            mitigation["date"] = str(alert["acknowledged_at"])
        if alert.get("acknowledged_by"):
            mitigation["author"] = {"display": str(alert["acknowledged_by"])}
        issue["mitigation"] = [mitigation]
    return issue


def alerts_to_fhir_bundle(alerts: pl.DataFrame) -> dict[str, Any]:
    """A FHIR R4 collection Bundle with one DetectedIssue entry per alert row."""
    entries = []
    for alert in alerts.iter_rows(named=True):
        resource = alert_to_detected_issue(alert)
        full_url = f"urn:uuid:{uuid.uuid5(_UUID_NAMESPACE, alert['alert_id'])}"
        entries.append({"fullUrl": full_url, "resource": resource})
    return {"resourceType": "Bundle", "type": "collection", "entry": entries}


__all__ = ["FHIR_SEVERITY", "RULE_SYSTEM", "alert_to_detected_issue", "alerts_to_fhir_bundle"]
