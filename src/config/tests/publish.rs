//! The `publish:` section under the command line.

use super::*;

#[test]
fn publish_settings_take_the_command_line_over_the_config_over_the_defaults() {
    let section = Publish {
        repo: Some("/srv/repo".into()),
        suite: Some("testing".into()),
        url: Some("https://m.example/etcd/".into()),
        sign_key: Some("/k/sign.asc".into()),
        unsigned: false,
        keep: Some(5),
    };
    let s = section.resolve(PublishFlags::default(), "c.yaml").unwrap();
    assert_eq!(s.repo, std::path::PathBuf::from("/srv/repo"));
    assert_eq!(s.suite, "testing");
    assert_eq!(s.url.as_deref(), Some("https://m.example/etcd"));
    assert_eq!(s.sign_key, Some("/k/sign.asc".into()));
    assert_eq!(s.keep, 5);

    let flags = PublishFlags {
        suite: Some("stable".into()),
        unsigned: true,
        keep: Some(1),
        ..PublishFlags::default()
    };
    let s = section.resolve(flags, "c.yaml").unwrap();
    assert_eq!((s.suite.as_str(), s.sign_key, s.keep), ("stable", None, 1));

    let none = Publish::default();
    let missing = |f: PublishFlags| match none.resolve(f, "c.yaml") {
        Err(PublishProblem::Missing(why)) => why,
        other => panic!("{other:?}"),
    };
    assert!(missing(PublishFlags::default()).contains("--repo DIR"));
    let repo_only = PublishFlags {
        repo: Some("r".into()),
        ..PublishFlags::default()
    };
    assert!(
        missing(repo_only.clone()).contains("set publish.sign_key or publish.unsigned in c.yaml")
    );
    let bad = PublishFlags {
        suite: Some("../up".into()),
        unsigned: true,
        ..repo_only
    };
    assert!(matches!(
        none.resolve(bad, "c.yaml"),
        Err(PublishProblem::Invalid(_))
    ));
}
