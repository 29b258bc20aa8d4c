use super::*;

fn config(text: &str) -> Result<S3Config, StreamError> {
    S3Config::from_settings("archive", toml::from_str(text).unwrap())
}

#[test]
fn the_url_names_bucket_and_prefix_and_an_endpoint_means_path_style() {
    let config = config(
        r#"
        url = "s3://audit-archive/prod/eu"
        endpoint = "http://127.0.0.1:8333"
        access_key = "ak"
        secret_key = "sk"
        manifest_interval_secs = 5
        "#,
    )
    .unwrap();
    assert_eq!(config.bucket, "audit-archive");
    assert_eq!(config.layout.prefix(), "prod/eu/");
    assert!(config.path_style);
    assert_eq!(config.manifest_interval, Duration::from_secs(5));
    assert_eq!(config.gzip_level, DEFAULT_GZIP_LEVEL);
    let debug = format!("{config:?}");
    assert!(!debug.contains("\"sk\""), "no secret in {debug}");
}

#[test]
fn bad_urls_and_unknown_keys_are_refused() {
    for (text, expected) in [
        (r#"url = "https://bucket/x""#, "expected s3://BUCKET"),
        (r#"url = "s3:///x""#, "expected s3://BUCKET"),
        (
            "url = \"s3://b\"\naccess_key = \"a\"\nsecret_key = \"s\"\nbukket = 1",
            "unknown field `bukket`",
        ),
        (
            "url = \"s3://b\"\naccess_key = \"a\"\nsecret_key = \"s\"\ngzip_level = 0",
            "gzip_level 0: expected 1",
        ),
    ] {
        let error = config(text).unwrap_err().to_string();
        assert!(error.contains(expected), "{text}: {error}");
    }
}
