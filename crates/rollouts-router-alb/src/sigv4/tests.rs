//! The signer against vectors of AWS's published SigV4 test suite (credentials `AKIDEXAMPLE`,
//! region `us-east-1`, service `service`, 2015-08-30 12:36:00 UTC). Each case checks the
//! canonical request, the hash in the string to sign and the `Authorization` header.

use super::*;

const SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
const DATE: &str = "20150830T123600Z";
const EMPTY_HASH: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
const TOKEN: &str = "AQoDYXdzEPT//////////wEXAMPLEtc764bNrC9SAPBSM22wDOk4x4HIZ8j4FZTwdQWLWsKWHGBuFqwAeMicRXmxfpSPfIeoIYRqTflfKD8YUuwthAx7mSEI/qkPpKPi/kMcGdQrmGdeehM4IC1NtBmUpp2wUE8phUZampKsburEDy0KPkyQDYwT7WZ0wq5VSXDvp75YU9HFvlRd8Tx6q6fE8YQcHNVXAkiY9q6d+xo0rKwT38xVqr7ZD0u0iPPkUL64lIZbqBAz+scqKmlzm8FDrypNC9Yjc8fPOLn9FX9KSYvKTr4rvx3iSIlTJabIQwj2ICCR/oLxBA==";

fn credentials(token: Option<&str>) -> Credentials {
    Credentials {
        access_key_id: "AKIDEXAMPLE".into(),
        secret_access_key: SECRET.into(),
        session_token: token.map(String::from),
    }
}

fn scope() -> Scope<'static> {
    Scope {
        amz_date: DATE,
        region: "us-east-1",
        service: "service",
    }
}

struct Case {
    name: &'static str,
    method: &'static str,
    path: &'static str,
    query: &'static str,
    /// Signed headers, besides `Host: example.amazonaws.com` and `X-Amz-Date` (added first).
    headers: &'static [(&'static str, &'static str)],
    body: &'static str,
    /// The canonical request's lines between the method and the payload hash.
    creq_middle: &'static str,
    payload_hash: &'static str,
    /// Last line of the string to sign.
    creq_hash: &'static str,
    signed_headers: &'static str,
    signature: &'static str,
}

const HOST_DATE: &str = "host:example.amazonaws.com\nx-amz-date:20150830T123600Z\n";

fn cases() -> Vec<Case> {
    vec![
        Case {
            name: "get-vanilla",
            method: "GET",
            path: "/",
            query: "",
            headers: &[],
            body: "",
            creq_middle: "/\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n",
            payload_hash: EMPTY_HASH,
            creq_hash: "bb579772317eb040ac9ed261061d46c1f17a8133879d6129b6e1c25292927e63",
            signed_headers: "host;x-amz-date",
            signature: "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31",
        },
        Case {
            name: "get-vanilla-query-order-key-case",
            method: "GET",
            path: "/",
            query: "Param2=value2&Param1=value1",
            headers: &[],
            body: "",
            creq_middle: "/\nParam1=value1&Param2=value2\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n",
            payload_hash: EMPTY_HASH,
            creq_hash: "816cd5b414d056048ba4f7c5386d6e0533120fb1fcfa93762cf0fc39e2cf19e0",
            signed_headers: "host;x-amz-date",
            signature: "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500",
        },
        Case {
            name: "get-vanilla-query-order-key",
            method: "GET",
            path: "/",
            query: "Param1=value2&Param1=Value1",
            headers: &[],
            body: "",
            creq_middle: "/\nParam1=Value1&Param1=value2\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n",
            payload_hash: EMPTY_HASH,
            creq_hash: "704b4cef673542d84cdff252633f065e8daeba5f168b77116f8b1bcaf3d38f89",
            signed_headers: "host;x-amz-date",
            signature: "eedbc4e291e521cf13422ffca22be7d2eb8146eecf653089df300a15b2382bd1",
        },
        Case {
            name: "get-vanilla-utf8-query",
            method: "GET",
            path: "/",
            query: "\u{1234}=bar",
            headers: &[],
            body: "",
            creq_middle: "/\n%E1%88%B4=bar\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n",
            payload_hash: EMPTY_HASH,
            creq_hash: "eb30c5bed55734080471a834cc727ae56beb50e5f39d1bff6d0d38cb192a7073",
            signed_headers: "host;x-amz-date",
            signature: "2cdec8eed098649ff3a119c94853b13c643bcf08f8b0a1d91e12c9027818dd04",
        },
        Case {
            name: "get-header-value-trim",
            method: "GET",
            path: "/",
            query: "",
            headers: &[("My-Header1", " value1"), ("My-Header2", " \"a   b   c\"")],
            body: "",
            creq_middle: "/\n\nhost:example.amazonaws.com\nmy-header1:value1\nmy-header2:\"a b c\"\nx-amz-date:20150830T123600Z\n",
            payload_hash: EMPTY_HASH,
            creq_hash: "a726db9b0df21c14f559d0a978e563112acb1b9e05476f0a6a1c7d68f28605c7",
            signed_headers: "host;my-header1;my-header2;x-amz-date",
            signature: "acc3ed3afb60bb290fc8d2dd0098b9911fcaa05412b367055dee359757a9c736",
        },
        Case {
            name: "get-header-key-duplicate",
            method: "GET",
            path: "/",
            query: "",
            headers: &[
                ("My-Header1", "value2"),
                ("My-Header1", "value2"),
                ("My-Header1", "value1"),
            ],
            body: "",
            creq_middle: "/\n\nhost:example.amazonaws.com\nmy-header1:value2,value2,value1\nx-amz-date:20150830T123600Z\n",
            payload_hash: EMPTY_HASH,
            creq_hash: "dc7f04a3abfde8d472b0ab1a418b741b7c67174dad1551b4117b15527fbe966c",
            signed_headers: "host;my-header1;x-amz-date",
            signature: "c9d5ea9f3f72853aea855b47ea873832890dbdd183b4468f858259531a5138ea",
        },
        Case {
            name: "get-space (normalize-path)",
            method: "GET",
            path: "/example space/",
            query: "",
            headers: &[],
            body: "",
            creq_middle: "/example%20space/\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n",
            payload_hash: EMPTY_HASH,
            creq_hash: "63ee75631ed7234ae61b5f736dfc7754cdccfedbff4b5128a915706ee9390d86",
            signed_headers: "host;x-amz-date",
            signature: "652487583200325589f1fba4c7e578f72c47cb61beeca81406b39ddec1366741",
        },
        Case {
            name: "get-slashes (normalize-path)",
            method: "GET",
            path: "//example//",
            query: "",
            headers: &[],
            body: "",
            creq_middle: "/example/\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n",
            payload_hash: EMPTY_HASH,
            creq_hash: "cb96b4ac96d501f7c5c15bc6d67b3035061cfced4af6585ad927f7e6c985c015",
            signed_headers: "host;x-amz-date",
            signature: "9a624bd73a37c9a373b5312afbebe7a714a789de108f0bdfe846570885f57e84",
        },
        Case {
            name: "get-relative-relative (normalize-path)",
            method: "GET",
            path: "/example1/example2/../..",
            query: "",
            headers: &[],
            body: "",
            creq_middle: "/\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n",
            payload_hash: EMPTY_HASH,
            creq_hash: "bb579772317eb040ac9ed261061d46c1f17a8133879d6129b6e1c25292927e63",
            signed_headers: "host;x-amz-date",
            signature: "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31",
        },
        Case {
            name: "get-slash-pointless-dot (normalize-path)",
            method: "GET",
            path: "/./example",
            query: "",
            headers: &[],
            body: "",
            creq_middle: "/example\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n",
            payload_hash: EMPTY_HASH,
            creq_hash: "214d50c111a8edc4819da6a636336472c916b5240f51e9a51b5c3305180cf702",
            signed_headers: "host;x-amz-date",
            signature: "ef75d96142cf21edca26f06005da7988e4f8dc83a165a80865db7089db637ec5",
        },
        Case {
            name: "post-vanilla",
            method: "POST",
            path: "/",
            query: "",
            headers: &[],
            body: "",
            creq_middle: "/\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n",
            payload_hash: EMPTY_HASH,
            creq_hash: "553f88c9e4d10fc9e109e2aeb65f030801b70c2f6468faca261d401ae622fc87",
            signed_headers: "host;x-amz-date",
            signature: "5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b",
        },
        Case {
            name: "post-vanilla-query",
            method: "POST",
            path: "/",
            query: "Param1=value1",
            headers: &[],
            body: "",
            creq_middle: "/\nParam1=value1\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n",
            payload_hash: EMPTY_HASH,
            creq_hash: "9d659678c1756bb3113e2ce898845a0a79dbbc57b740555917687f1b3340fbbd",
            signed_headers: "host;x-amz-date",
            signature: "28038455d6de14eafc1f9222cf5aa6f1a96197d7deb8263271d420d138af7f11",
        },
        // The suite's .creq for this case lists content-length, but its .sts and .authz sign
        // only content-type;host;x-amz-date, which is what we check (the .sts hash is of this
        // canonical request).
        Case {
            name: "post-x-www-form-urlencoded",
            method: "POST",
            path: "/",
            query: "",
            headers: &[("Content-Type", "application/x-www-form-urlencoded")],
            body: "Param1=value1",
            creq_middle: "/\n\ncontent-type:application/x-www-form-urlencoded\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n",
            payload_hash: "9095672bbd1f56dfc5b65f3e153adc8731a4a654192329106275f4c7b24d0b6e",
            creq_hash: "42a5e5bb34198acb3e84da4f085bb7927f2bc277ca766e6d19c73c2154021281",
            signed_headers: "content-type;host;x-amz-date",
            signature: "ff11897932ad3f4e8b18135d722051e5ac45fc38421b1da7b9d196a0fe09473a",
        },
        Case {
            name: "post-sts-header-before",
            method: "POST",
            path: "/",
            query: "",
            headers: &[("X-Amz-Security-Token", TOKEN)],
            body: "",
            creq_middle: "", // built below: the token is long
            payload_hash: EMPTY_HASH,
            creq_hash: "c237e1b440d4c63c32ca95b5b99481081cb7b13c7e40434868e71567c1a882f6",
            signed_headers: "host;x-amz-date;x-amz-security-token",
            signature: "85d96828115b5dc0cfc3bd16ad9e210dd772bbebba041836c64533a82be05ead",
        },
    ]
}

#[test]
fn the_published_vectors_sign_as_aws_does() {
    for case in cases() {
        let mut headers = vec![
            ("Host".to_string(), "example.amazonaws.com".to_string()),
            ("X-Amz-Date".to_string(), DATE.to_string()),
        ];
        headers.extend(
            case.headers
                .iter()
                .map(|(n, v)| (n.to_string(), v.to_string())),
        );
        let request = Request {
            method: case.method,
            path: case.path,
            query: case.query,
            headers: &headers,
            body: case.body.as_bytes(),
        };
        let token = case
            .headers
            .iter()
            .any(|(n, _)| *n == "X-Amz-Security-Token");
        let middle = if token {
            format!("/\n\n{HOST_DATE}x-amz-security-token:{TOKEN}\n")
        } else {
            case.creq_middle.to_string()
        };
        let (creq, signed) = canonical_request(&request);
        assert_eq!(
            creq,
            format!(
                "{}\n{middle}\n{}\n{}",
                case.method, case.signed_headers, case.payload_hash
            ),
            "{}: canonical request",
            case.name
        );
        assert_eq!(signed, case.signed_headers, "{}", case.name);
        let sts = string_to_sign(&scope(), &creq);
        assert_eq!(
            sts,
            format!(
                "AWS4-HMAC-SHA256\n{DATE}\n20150830/us-east-1/service/aws4_request\n{}",
                case.creq_hash
            ),
            "{}: string to sign",
            case.name
        );
        let creds = credentials(token.then_some(TOKEN));
        assert_eq!(
            authorization(&creds, &scope(), &request),
            format!(
                "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, \
                 SignedHeaders={}, Signature={}",
                case.signed_headers, case.signature
            ),
            "{}: authorization",
            case.name
        );
    }
}

/// The signing key example of AWS's SigV4 documentation (IAM, us-east-1, 2015-08-30).
#[test]
fn signing_key_matches_the_documented_derivation() {
    let scope = Scope {
        amz_date: "20150830T123600Z",
        region: "us-east-1",
        service: "iam",
    };
    assert_eq!(
        hex(&signing_key(SECRET, &scope)),
        "c4afb1cc5771d871763a393e44b703571b55cc28424d1a5e86da6ed3c154a4b9"
    );
}

#[test]
fn encoding_helpers() {
    assert_eq!(uri_encode("a b/c~*", false), "a%20b%2Fc~%2A");
    assert_eq!(uri_encode("a b/c", true), "a%20b/c");
    assert_eq!(percent_decode("a%20b%2x%", false), "a b%2x%");
    assert_eq!(percent_decode("a+b", true), "a b");
    assert_eq!(canonical_query("b&a=1&a=0"), "a=0&a=1&b=");
    assert_eq!(canonical_uri("/"), "/");
    assert_eq!(canonical_uri(""), "/");
    assert_eq!(
        amz_date("2015-08-30T12:36:00Z".parse().unwrap()),
        "20150830T123600Z"
    );
    assert_eq!(sha256_hex(b""), EMPTY_HASH, "SHA-256 of the empty string");
    let debug = format!("{:?}", credentials(Some("t")));
    assert!(
        !debug.contains(SECRET) && !debug.contains("\"t\""),
        "{debug}"
    );
}
