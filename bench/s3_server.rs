//! The local S3 server of `bench/s3_upload.sh`: s3s-fs over TCP with SigV4, the same server
//! the tests start, as a process both scopetrail and `aws s3 cp` upload to.
//!
//!   s3_server <root folder> <port> <access key> <secret key>

use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [root, port, access, secret] = args.as_slice() else {
        anyhow::bail!("usage: s3_server <root folder> <port> <access key> <secret key>");
    };
    let fs = s3s_fs::FileSystem::new(root).map_err(|e| anyhow::anyhow!("{root}: {e:?}"))?;
    let mut builder = s3s::service::S3ServiceBuilder::new(fs);
    builder.set_auth(s3s::auth::SimpleAuth::from_single(
        access.clone(),
        secret.clone(),
    ));
    let service = builder.build();
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port.parse::<u16>()?)).await?;
    println!("listening on http://{}", listener.local_addr()?);
    let http = Builder::new(TokioExecutor::new());
    loop {
        let (socket, _) = listener.accept().await?;
        let conn = http
            .serve_connection(TokioIo::new(socket), service.clone())
            .into_owned();
        tokio::spawn(async move {
            let _ = conn.await;
        });
    }
}
