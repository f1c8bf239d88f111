//! The cluster's certificates and keys, made with the `openssl` command.
//!
//! * a CA;
//! * one serving certificate (kube-apiserver, and the HTTPS endpoints of
//!   kube-controller-manager, kube-scheduler and kwok) for 127.0.0.1 and the in-cluster names
//!   of the API server;
//! * an admin client certificate in group `system:masters` (the kubeconfig's user, also used
//!   by the controllers and kwok);
//! * the front-proxy client certificate of the aggregation layer;
//! * the service-account token signing key pair.

use std::{
    fs,
    path::{Path, PathBuf},
    process::{Command, Stdio},
};

use anyhow::{Context, Result, bail};

/// Paths of everything [`generate`] wrote.
#[derive(Debug, Clone)]
pub struct Pki {
    pub ca_cert: PathBuf,
    pub ca_key: PathBuf,
    pub server_cert: PathBuf,
    pub server_key: PathBuf,
    pub admin_cert: PathBuf,
    pub admin_key: PathBuf,
    pub proxy_cert: PathBuf,
    pub proxy_key: PathBuf,
    pub sa_key: PathBuf,
    pub sa_pub: PathBuf,
}

const DAYS: &str = "3650";

/// Writes a fresh PKI into `dir`.
pub fn generate(dir: &Path) -> Result<Pki> {
    fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let path = |name: &str| dir.join(name);
    let pki = Pki {
        ca_cert: path("ca.crt"),
        ca_key: path("ca.key"),
        server_cert: path("server.crt"),
        server_key: path("server.key"),
        admin_cert: path("admin.crt"),
        admin_key: path("admin.key"),
        proxy_cert: path("front-proxy-client.crt"),
        proxy_key: path("front-proxy-client.key"),
        sa_key: path("sa.key"),
        sa_pub: path("sa.pub"),
    };

    // Our own minimal config, so that the result does not depend on the system's openssl.cnf.
    fs::write(
        dir.join("ca.cnf"),
        "[req]\ndistinguished_name = dn\nx509_extensions = ca\nprompt = no\n[dn]\n\
         [ca]\nbasicConstraints = critical,CA:TRUE\n\
         keyUsage = critical,keyCertSign,cRLSign,digitalSignature\n\
         subjectKeyIdentifier = hash\n",
    )?;
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "ca.key",
            "-out",
            "ca.crt",
            "-days",
            DAYS,
            "-subj",
            "/CN=rollouts-rs-local-ca",
            "-config",
            "ca.cnf",
        ],
    )?;
    leaf(
        dir,
        "server",
        "/CN=kube-apiserver",
        "serverAuth",
        Some(
            "IP:127.0.0.1,IP:10.96.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,\
             DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local",
        ),
    )?;
    leaf(
        dir,
        "admin",
        "/O=system:masters/CN=rollouts-rs-admin",
        "clientAuth",
        None,
    )?;
    leaf(
        dir,
        "front-proxy-client",
        "/CN=front-proxy-client",
        "clientAuth",
        None,
    )?;
    openssl(dir, &["genrsa", "-out", "sa.key", "2048"])?;
    openssl(dir, &["rsa", "-in", "sa.key", "-pubout", "-out", "sa.pub"])?;
    for file in fs::read_dir(dir)? {
        let file = file?.path();
        if file
            .extension()
            .is_some_and(|e| e == "csr" || e == "ext" || e == "srl" || e == "cnf")
        {
            let _ = fs::remove_file(file);
        }
    }
    Ok(pki)
}

/// A key and a certificate signed by the CA.
fn leaf(dir: &Path, name: &str, subject: &str, usage: &str, san: Option<&str>) -> Result<()> {
    let mut ext = format!(
        "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\n\
         extendedKeyUsage={usage}\n"
    );
    if let Some(san) = san {
        ext.push_str(&format!("subjectAltName={san}\n"));
    }
    fs::write(dir.join(format!("{name}.ext")), ext)?;
    let (key, csr, crt, extfile) = (
        format!("{name}.key"),
        format!("{name}.csr"),
        format!("{name}.crt"),
        format!("{name}.ext"),
    );
    openssl(
        dir,
        &[
            "req", "-newkey", "rsa:2048", "-nodes", "-keyout", &key, "-out", &csr, "-subj",
            subject, "-config", "ca.cnf",
        ],
    )?;
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            &csr,
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            &crt,
            "-days",
            DAYS,
            "-extfile",
            &extfile,
        ],
    )
}

fn openssl(dir: &Path, args: &[&str]) -> Result<()> {
    let out = Command::new("openssl")
        .current_dir(dir)
        .args(args)
        .stdin(Stdio::null())
        .output();
    let out = match out {
        Ok(out) => out,
        Err(err) => bail!(
            "`openssl` was not found ({err}); it makes the cluster's certificates \
             (Debian: apt-get install openssl)"
        ),
    };
    if !out.status.success() {
        bail!(
            "openssl {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(cert: &Path) -> String {
        let out = Command::new("openssl")
            .args(["x509", "-noout", "-text", "-in"])
            .arg(cert)
            .output()
            .expect("openssl runs");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    #[test]
    fn generates_a_verifiable_pki() {
        let dir = std::env::temp_dir().join(format!("xtask-pki-test-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        let pki = generate(&dir).unwrap();
        for cert in [&pki.server_cert, &pki.admin_cert, &pki.proxy_cert] {
            let out = Command::new("openssl")
                .arg("verify")
                .arg("-CAfile")
                .arg(&pki.ca_cert)
                .arg(cert)
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{} does not verify: {}",
                cert.display(),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let server = text(&pki.server_cert);
        assert!(server.contains("IP Address:127.0.0.1"), "{server}");
        assert!(server.contains("TLS Web Server Authentication"), "{server}");
        let admin = text(&pki.admin_cert);
        assert!(admin.contains("O = system:masters"), "{admin}");
        assert!(admin.contains("TLS Web Client Authentication"), "{admin}");
        assert!(pki.sa_pub.exists() && pki.sa_key.exists());
        assert!(!dir.join("server.csr").exists());
        fs::remove_dir_all(&dir).unwrap();
    }
}
