//! The JSON of canary steps, byte for byte as Go's `encoding/json` writes it.
//!
//! The controller stores `status.currentStepHash`, an FNV hash of these bytes; Argo computes it
//! from its Go types, so ours must serialize steps with the same key order and the same
//! omissions. The expected string below was written by hand from the Go rules: fields in
//! declaration order, `omitempty` fields left out when unset, IntOrString as a bare number or
//! string, and free-form plugin config as received (the API server returns its keys sorted,
//! and Go copies raw JSON through unchanged).

use rollouts_api::CanaryStep;

#[test]
fn step_list_serializes_like_go() {
    // Keys of our own types are deliberately out of Go order in the input.
    let input = r#"[
        {"setWeight": 20},
        {"pause": {"duration": "1m"}},
        {"pause": {}},
        {"pause": {"duration": 30}},
        {"setCanaryScale": {"weight": 50}},
        {"setCanaryScale": {"replicas": 2}},
        {"setCanaryScale": {"matchTrafficWeight": true}},
        {"analysis": {
            "args": [{"value": "web", "name": "service"},
                     {"valueFrom": {"podTemplateHashValue": "Latest"}, "name": "hash"}],
            "templates": [{"clusterScope": true, "templateName": "success-rate"}],
            "analysisRunMetadata": {"labels": {"team": "web"}}
        }},
        {"experiment": {
            "analysisRunMetadata": {},
            "duration": "10m",
            "analyses": [{"templateName": "compare", "name": "cmp", "requiredForCompletion": true}],
            "templates": [{"weight": 5, "metadata": {"labels": {"role": "canary"}},
                           "replicas": 1, "specRef": "canary", "name": "canary"}]
        }},
        {"setHeaderRoute": {"match": [{"headerValue": {"exact": "1"}, "headerName": "x-beta"}],
                            "name": "beta"}},
        {"setMirrorRoute": {"percentage": 10, "name": "mirror",
                            "match": [{"path": {"prefix": "/api"}, "method": {"exact": "GET"}}]}},
        {"plugin": {"config": {"a": "x", "b": 1}, "name": "example.com/step"}}
    ]"#;
    let steps: Vec<CanaryStep> = serde_json::from_str(input).unwrap();

    let expected = concat!(
        r#"[{"setWeight":20},"#,
        r#"{"pause":{"duration":"1m"}},"#,
        r#"{"pause":{}},"#,
        r#"{"pause":{"duration":30}},"#,
        r#"{"setCanaryScale":{"weight":50}},"#,
        r#"{"setCanaryScale":{"replicas":2}},"#,
        r#"{"setCanaryScale":{"matchTrafficWeight":true}},"#,
        r#"{"analysis":{"templates":[{"templateName":"success-rate","clusterScope":true}],"#,
        r#""args":[{"name":"service","value":"web"},{"name":"hash","valueFrom":{"podTemplateHashValue":"Latest"}}],"#,
        r#""analysisRunMetadata":{"labels":{"team":"web"}}}},"#,
        r#"{"experiment":{"templates":[{"name":"canary","specRef":"canary","replicas":1,"#,
        r#""metadata":{"labels":{"role":"canary"}},"weight":5}],"duration":"10m","#,
        r#""analyses":[{"name":"cmp","templateName":"compare","requiredForCompletion":true}],"#,
        r#""analysisRunMetadata":{}}},"#,
        r#"{"setHeaderRoute":{"name":"beta","match":[{"headerName":"x-beta","headerValue":{"exact":"1"}}]}},"#,
        r#"{"setMirrorRoute":{"name":"mirror","match":[{"method":{"exact":"GET"},"path":{"prefix":"/api"}}],"percentage":10}},"#,
        r#"{"plugin":{"name":"example.com/step","config":{"a":"x","b":1}}}]"#,
    );
    let got = String::from_utf8(serde_json::to_vec(&steps).unwrap()).unwrap();
    assert_eq!(got, expected);
}

#[test]
fn one_step_with_every_field_keeps_go_order() {
    // Validation rejects such a step, but the encoding must still follow Go's field order.
    let step: CanaryStep = serde_json::from_str(
        r#"{"plugin":{"name":"p"},"setMirrorRoute":{"name":"m"},"setHeaderRoute":{"name":"h"},
            "setCanaryScale":{"replicas":1},"analysis":{},"experiment":{"templates":[]},
            "pause":{},"setWeight":1}"#,
    )
    .unwrap();
    assert_eq!(
        serde_json::to_string(&step).unwrap(),
        concat!(
            r#"{"setWeight":1,"pause":{},"experiment":{"templates":[]},"analysis":{},"#,
            r#""setCanaryScale":{"replicas":1},"setHeaderRoute":{"name":"h"},"#,
            r#""setMirrorRoute":{"name":"m"},"plugin":{"name":"p"}}"#
        )
    );
}
