//! The CA: create it once, reuse it forever after, or take the user's.
//!
//! A half-present or mismatched CA is always an error with the way out spelled
//! out, because every guess (regenerate, overwrite) would silently invalidate
//! certificates already installed on running nodes.

use std::fs;
use std::path::Path;

use anyhow::{Context, Result, bail};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose,
    PublicKeyData,
};
use time::OffsetDateTime;
use x509_parser::prelude::{FromDer, X509Certificate};

use super::x509::{self, Policy};
use super::{CA_CERT, CA_KEY, CERT_MODE, CaOrigin, KEY_MODE};
use crate::config::{CaImport, Cluster, ConfigError, Problem, Rule, Subject};
use crate::fsutil;
use crate::report::Reporter;

pub(super) const CA_COMMON_NAME: &str = "etcd CA";

/// A CA that passed every check: key matches, it is a CA, it has not expired.
pub(super) struct Ca {
    /// The text written to `ca.pem` and packaged: the certificate re-encoded
    /// from its DER, whatever else the file it came from holds.
    pub cert_pem: String,
    pub der: Vec<u8>,
    pub key: KeyPair,
    pub not_before: OffsetDateTime,
    pub not_after: OffsetDateTime,
    pub origin: CaOrigin,
}

impl Ca {
    pub fn x509(&self) -> Result<X509Certificate<'_>> {
        let (_, x) = X509Certificate::from_der(&self.der).context("cannot re-read the CA")?;
        Ok(x)
    }

    pub fn issuer(&self) -> Result<Issuer<'static, &KeyPair>> {
        Issuer::from_ca_cert_pem(&self.cert_pem, &self.key)
            .map_err(|e| anyhow::anyhow!("cannot use the CA certificate for signing: {e}"))
    }
}

/// What this run does with the CA, decided without writing anything.
pub(super) enum CaStep {
    /// No CA yet (or only the key of an interrupted creation): create one.
    Create,
    /// The CA of an earlier run, checked.
    Reuse(Ca),
    /// The CA given in `pki.ca_cert` / `pki.ca_key`, checked; `write` when
    /// the PKI directory does not hold exactly these files yet.
    Import {
        ca: Ca,
        from: std::path::PathBuf,
        key_bytes: Vec<u8>,
        write: bool,
    },
}

/// Decide what to do with the CA in `pki_dir`. Reads, never writes; every
/// refusal (half a CA, a different CA than the one to import) happens here,
/// so `plan` reports it as `gen` would.
pub(super) fn decide(
    pki_dir: &Path,
    cluster: &Cluster,
    now: OffsetDateTime,
    reporter: &Reporter,
) -> Result<CaStep> {
    let cert_path = pki_dir.join(CA_CERT);
    let key_path = pki_dir.join(CA_KEY);
    let have_cert = cert_path.exists();
    let have_key = key_path.exists();
    let start_over = format!(
        "or delete {} to start over with a new CA, which re-issues every certificate (every node must then be reinstalled)",
        pki_dir.display()
    );

    if let Some(import) = &cluster.pki.import {
        return decide_import(pki_dir, import, now, reporter);
    }
    let ca = match (have_cert, have_key) {
        (false, false) => return Ok(CaStep::Create),
        (true, true) => load(
            &read(&cert_path)?,
            &read(&key_path)?,
            &cert_path,
            &key_path,
            now,
            CaOrigin::Reused,
        )
        .with_context(|| {
            format!(
                "the CA in {} cannot be reused\n  help: restore both files from a backup, {start_over}",
                pki_dir.display()
            )
        })?,
        (true, false) => bail!(
            "{} is missing but {} exists: certificates cannot be issued without the CA key\n  help: restore {CA_KEY} from a backup, {start_over}",
            key_path.display(),
            cert_path.display()
        ),
        // `create` writes the key first: a key alone, with nothing signed by
        // it, is a creation that was interrupted. Finish it with a new CA.
        (false, true) if !has_issued_leaves(pki_dir) => {
            reporter.warn(format!(
                "{} has no certificate and signed nothing: an earlier run was interrupted while creating the CA; creating it again",
                key_path.display()
            ));
            return Ok(CaStep::Create);
        }
        (false, true) => bail!(
            "{} is missing but {} exists: the CA certificate that nodes trust is gone\n  help: restore {CA_CERT} from a backup, {start_over}",
            cert_path.display(),
            key_path.display()
        ),
    };
    warn_on_drift(&ca, pki_dir, cluster, now, reporter)?;
    Ok(CaStep::Reuse(ca))
}

/// Carry out `step`: the CA to sign with.
pub(super) fn apply(
    step: CaStep,
    pki_dir: &Path,
    cluster: &Cluster,
    now: OffsetDateTime,
    reporter: &Reporter,
) -> Result<Ca> {
    let cert_path = pki_dir.join(CA_CERT);
    let key_path = pki_dir.join(CA_KEY);
    match step {
        CaStep::Create => create(pki_dir, cluster, now, reporter),
        CaStep::Reuse(ca) => {
            reporter.detail("Reusing", format!("CA {}", cert_path.display()));
            Ok(ca)
        }
        CaStep::Import {
            ca,
            from,
            key_bytes,
            write,
        } => {
            if write {
                reporter.status(
                    "Importing",
                    format!("CA {} into {}", from.display(), cert_path.display()),
                );
                fsutil::write_atomic(&key_path, &key_bytes, KEY_MODE)?;
                fsutil::write_atomic(&cert_path, ca.cert_pem.as_bytes(), CERT_MODE)?;
            } else {
                reporter.detail("Reusing", format!("imported CA {}", cert_path.display()));
            }
            Ok(ca)
        }
    }
}

/// Whether any certificate has been issued into `pki_dir` (nodes/, clients/).
fn has_issued_leaves(pki_dir: &Path) -> bool {
    ["nodes", "clients"].iter().any(|sub| {
        fs::read_dir(pki_dir.join(sub)).is_ok_and(|mut entries| {
            entries.any(|e| e.is_ok_and(|e| e.file_name().to_string_lossy().ends_with(".pem")))
        })
    })
}

fn create(
    pki_dir: &Path,
    cluster: &Cluster,
    now: OffsetDateTime,
    reporter: &Reporter,
) -> Result<Ca> {
    let files = CaFiles {
        cert: CA_CERT,
        key: CA_KEY,
        common_name: CA_COMMON_NAME,
    };
    create_as(pki_dir, &files, cluster, now, reporter)
}

/// Which files a CA is kept in under the PKI directory, and its name.
pub(super) struct CaFiles<'a> {
    pub cert: &'a str,
    pub key: &'a str,
    pub common_name: &'a str,
}

/// Create a CA into `files` under `pki_dir`.
pub(super) fn create_as(
    pki_dir: &Path,
    files: &CaFiles,
    cluster: &Cluster,
    now: OffsetDateTime,
    reporter: &Reporter,
) -> Result<Ca> {
    let policy = Policy::new(&cluster.pki, now)?;
    let key = x509::generate_key(cluster.pki.algorithm)?;
    let mut params = CertificateParams::default();
    params.distinguished_name = distinguished_name(&cluster.pki.subject, files.common_name);
    // pathlen:0: the CA signs leaves only; no certificate it issues can act
    // as a CA of its own, even if a leaf were mis-issued with CA:TRUE.
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    params.not_before = now - x509::CLOCK_SKEW;
    params.not_after = policy.fresh_not_after();
    params.serial_number = Some(x509::random_serial()?);
    let cert = params
        .self_signed(&key)
        .map_err(|e| anyhow::anyhow!("cannot create the CA certificate: {e}"))?;

    let cert_path = pki_dir.join(files.cert);
    let key_path = pki_dir.join(files.key);
    reporter.status(
        "Creating",
        format!(
            "CA \"{}\" ({}) in {}",
            files.common_name,
            cluster.pki.algorithm.as_str(),
            cert_path.display()
        ),
    );
    let key_pem = key.serialize_pem();
    // Key first: a run killed in between leaves "key without certificate",
    // which is reported, never a certificate whose key is lost.
    fsutil::write_atomic(&key_path, key_pem.as_bytes(), KEY_MODE)?;
    fsutil::write_atomic(&cert_path, cert.pem().as_bytes(), CERT_MODE)?;
    load(
        cert.pem().as_bytes(),
        key_pem.as_bytes(),
        &cert_path,
        &key_path,
        now,
        CaOrigin::Created,
    )
}

/// C, ST, L, O, OU, CN: the order cfssl and Go write them in.
fn distinguished_name(subject: &Subject, common_name: &str) -> rcgen::DistinguishedName {
    let mut dn = rcgen::DistinguishedName::new();
    let fields = [
        (DnType::CountryName, &subject.country),
        (DnType::StateOrProvinceName, &subject.state),
        (DnType::LocalityName, &subject.locality),
        (DnType::OrganizationName, &subject.organization),
        (DnType::OrganizationalUnitName, &subject.organizational_unit),
    ];
    for (ty, value) in fields {
        if let Some(v) = value {
            dn.push(ty, v.as_str());
        }
    }
    dn.push(DnType::CommonName, common_name);
    dn
}

fn decide_import(
    pki_dir: &Path,
    import: &CaImport,
    now: OffsetDateTime,
    reporter: &Reporter,
) -> Result<CaStep> {
    let cert_bytes = read(&import.cert)?;
    let key_bytes = read(&import.key)?;
    let ca = load(
        &cert_bytes,
        &key_bytes,
        &import.cert,
        &import.key,
        now,
        CaOrigin::Imported,
    )
    .context("the CA given in pki.ca_cert / pki.ca_key cannot be imported")?;

    let cert_path = pki_dir.join(CA_CERT);
    let key_path = pki_dir.join(CA_KEY);
    let different = |what: &Path| {
        anyhow::anyhow!(
            "{} holds a different CA than pki.ca_cert {}: the CA of an output directory is never replaced implicitly\n  help: delete {} to re-issue every certificate under the imported CA (every node must then be reinstalled), or point pki.ca_cert and pki.ca_key at the CA already in {}",
            what.display(),
            import.cert.display(),
            pki_dir.display(),
            pki_dir.display()
        )
    };
    if cert_path.exists() {
        let existing = x509::cert_der(&read(&cert_path)?)
            .with_context(|| format!("cannot read {}", cert_path.display()))?;
        if existing != ca.der {
            return Err(different(&cert_path));
        }
    } else if key_path.exists() {
        let matches = std::str::from_utf8(&read(&key_path)?)
            .ok()
            .and_then(|pem| KeyPair::from_pem(pem).ok())
            .is_some_and(|k| k.subject_public_key_info() == ca.key.subject_public_key_info());
        if !matches {
            return Err(different(&key_path));
        }
    }

    let unchanged = fs::read(&cert_path).is_ok_and(|b| b == ca.cert_pem.as_bytes())
        && fs::read(&key_path).is_ok_and(|b| b == key_bytes);
    warn_if_expiring(&ca, now, reporter);
    Ok(CaStep::Import {
        ca,
        from: import.cert.clone(),
        key_bytes,
        write: !unchanged,
    })
}

/// Check the CA that `cluster` imports (`pki.ca_cert`, `pki.ca_key`), if
/// any, without writing anything: readable, a CA, key and certificate
/// belong together, no key in the certificate file, not expired. This runs
/// after loading (which reads only the YAML) and before anything is
/// written, and reports like config validation: exit 2, file:line, help.
pub fn check_import(cluster: &Cluster, now: OffsetDateTime) -> Result<(), ConfigError> {
    let Some(import) = &cluster.pki.import else {
        return Ok(());
    };
    let mut problems = Vec::new();
    for (path, at, what) in [
        (&import.cert, &import.cert_at, "ca_cert"),
        (&import.key, &import.key_at, "ca_key"),
    ] {
        if let Err(e) = fs::File::open(path) {
            problems.push(Problem {
                rule: Rule::CaFiles,
                at: at.clone(),
                message: format!("pki.{what} {}: {e}", path.display()),
                help: "give a readable PEM file; relative paths are relative to the config file"
                    .into(),
            });
        }
    }
    if problems.is_empty()
        && let Err(e) = read(&import.cert).and_then(|cert| {
            let key = read(&import.key)?;
            load(
                &cert,
                &key,
                &import.cert,
                &import.key,
                now,
                CaOrigin::Imported,
            )
        })
    {
        let text = format!("{e:#}");
        let (message, help) = text
            .split_once("\n  help: ")
            .map(|(m, h)| (m.to_owned(), h.to_owned()))
            .unwrap_or((
                text.clone(),
                "give the certificate and key of a CA that is still valid".into(),
            ));
        problems.push(Problem {
            rule: Rule::CaFiles,
            at: import.cert_at.clone(),
            message: format!("the CA to import is unusable: {message}"),
            help,
        });
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(ConfigError::Invalid(problems))
    }
}

/// The CA kept in `files` under `pki_dir`, checked; `None` when neither
/// file is there. Half of one is an error.
pub(super) fn load_files(
    pki_dir: &Path,
    files: &CaFiles,
    now: OffsetDateTime,
) -> Result<Option<Ca>> {
    let cert_path = pki_dir.join(files.cert);
    let key_path = pki_dir.join(files.key);
    match (cert_path.exists(), key_path.exists()) {
        (false, false) => Ok(None),
        (true, true) => load(
            &read(&cert_path)?,
            &read(&key_path)?,
            &cert_path,
            &key_path,
            now,
            CaOrigin::Reused,
        )
        .map(Some),
        (true, false) => bail!(
            "{} is missing but {} exists\n  help: restore it from a backup",
            key_path.display(),
            cert_path.display()
        ),
        (false, true) => bail!(
            "{} is missing but {} exists\n  help: restore it from a backup",
            cert_path.display(),
            key_path.display()
        ),
    }
}

/// Parse and check a CA from the bytes of its two files; the paths are for messages.
fn load(
    cert_bytes: &[u8],
    key_bytes: &[u8],
    cert_file: &Path,
    key_file: &Path,
    now: OffsetDateTime,
    origin: CaOrigin,
) -> Result<Ca> {
    let der = x509::ca_cert_der(cert_bytes, cert_file)?;
    // What is written and packaged is the certificate alone, re-encoded from
    // the DER that was checked: never the file's other blocks or text.
    let cert_pem = x509::encode_pem("CERTIFICATE", &der);
    let (_, x509) = X509Certificate::from_der(&der)
        .map_err(|e| anyhow::anyhow!("{} is not a valid certificate: {e}", cert_file.display()))?;
    let key_text = std::str::from_utf8(key_bytes)
        .map_err(|_| anyhow::anyhow!("{} is not a PEM text file", key_file.display()))?;
    let key = KeyPair::from_pem(key_text).map_err(|e| {
        anyhow::anyhow!(
            "{} holds no usable private key: {e}\n  help: give an unencrypted RSA or ECDSA key in PEM form (PKCS#1, SEC1 or PKCS#8)",
            key_file.display()
        )
    })?;
    if key.subject_public_key_info() != x509.public_key().raw {
        bail!(
            "{} is not the key of {}: their public keys differ\n  help: give the key file that was created together with this certificate",
            key_file.display(),
            cert_file.display()
        );
    }
    let is_ca = x509
        .basic_constraints()
        .ok()
        .flatten()
        .is_some_and(|bc| bc.value.ca);
    if !is_ca {
        bail!(
            "{} is not a CA certificate (basicConstraints CA:TRUE is missing)\n  help: give the CA's certificate (cfssl: the ca.pem from `cfssl gencert -initca`), not a server or client certificate",
            cert_file.display()
        );
    }
    if let Ok(Some(ku)) = x509.key_usage()
        && !ku.value.key_cert_sign()
    {
        bail!(
            "{} may not sign certificates (its key usage lacks keyCertSign)\n  help: give a CA certificate made for issuing certificates",
            cert_file.display()
        );
    }
    let not_before = x509.validity().not_before.to_datetime();
    let not_after = x509.validity().not_after.to_datetime();
    if not_after <= now {
        bail!(
            "the CA {} expired on {}\n  help: a new CA is needed; nodes must then be reinstalled with certificates it signs",
            cert_file.display(),
            x509::show_time(not_after)
        );
    }
    Ok(Ca {
        cert_pem,
        der,
        key,
        not_before,
        not_after,
        origin,
    })
}

/// The config asks for something the reused CA does not have. Keeping the CA
/// is right (it is trusted by running nodes), but the user should know.
fn warn_on_drift(
    ca: &Ca,
    pki_dir: &Path,
    cluster: &Cluster,
    now: OffsetDateTime,
    reporter: &Reporter,
) -> Result<()> {
    let x = ca.x509()?;
    let s = x.subject();
    let wanted = &cluster.pki.subject;
    let actual = Subject {
        country: x509::first_text(s.iter_country()),
        state: x509::first_text(s.iter_state_or_province()),
        locality: x509::first_text(s.iter_locality()),
        organization: x509::first_text(s.iter_organization()),
        organizational_unit: x509::first_text(s.iter_organizational_unit()),
    };
    let help = format!(
        "the existing CA is kept; to get a new one, delete {} (every certificate is then re-issued and every node must be reinstalled)",
        pki_dir.display()
    );
    if &actual != wanted {
        reporter.warn(format!(
            "pki.subject differs from the subject of the existing CA ({s}) in {}\n  help: {help}",
            pki_dir.join(CA_CERT).display()
        ));
    }
    let alg = x509::algorithm_of_spki(x.public_key());
    if alg != Some(cluster.pki.algorithm) {
        reporter.warn(format!(
            "pki.algorithm is {} but the existing CA's key is {}\n  help: {help}",
            cluster.pki.algorithm.as_str(),
            alg.map_or("another algorithm", |a| a.as_str())
        ));
    }
    warn_if_expiring(ca, now, reporter);
    Ok(())
}

fn warn_if_expiring(ca: &Ca, now: OffsetDateTime, reporter: &Reporter) {
    if ca.not_after - now < x509::RENEW_BEFORE {
        reporter.warn(format!(
            "the CA expires on {}; leaves cannot outlive it\n  help: plan a CA rotation: a new CA means new certificates on every node",
            x509::show_time(ca.not_after)
        ));
    }
}

fn read(path: &Path) -> Result<Vec<u8>> {
    fs::read(path).with_context(|| format!("cannot read {}", path.display()))
}
