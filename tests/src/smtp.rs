//! A small SMTP server on 127.0.0.1 for the mail tests: a real socket speaking enough of
//! RFC 5321 (greeting, EHLO/HELO, MAIL FROM, RCPT TO, DATA with dot-unstuffing, RSET, NOOP,
//! QUIT) for lettre to deliver to it. It keeps what it receives.

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

/// One email as the server received it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    /// The `MAIL FROM` address (without the angle brackets).
    pub mail_from: String,
    /// The `RCPT TO` addresses, in order.
    pub rcpt_to: Vec<String>,
    /// The message as sent after `DATA`, dot-unstuffed, without the final `.` line.
    pub data: Vec<u8>,
}

/// A running SMTP server; stops when dropped.
pub struct SmtpServer {
    addr: SocketAddr,
    received: Arc<Mutex<Vec<Received>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl SmtpServer {
    /// Listens on a free port of 127.0.0.1.
    pub fn start() -> SmtpServer {
        SmtpServer::start_on(0)
    }

    /// Listens on 127.0.0.1:`port` (0: any free port).
    pub fn start_on(port: u16) -> SmtpServer {
        let listener = TcpListener::bind(("127.0.0.1", port)).expect("bind the SMTP server");
        let addr = listener.local_addr().expect("the SMTP server's address");
        let received = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let received = received.clone();
            let stop = stop.clone();
            std::thread::spawn(move || {
                for stream in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let Ok(stream) = stream else { continue };
                    let received = received.clone();
                    std::thread::spawn(move || {
                        let _ = session(stream, &received);
                    });
                }
            })
        };
        SmtpServer {
            addr,
            received,
            stop,
            thread: Some(thread),
        }
    }

    /// The URL lettre connects with: `smtp://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("smtp://{}", self.addr)
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// The emails received so far.
    pub fn received(&self) -> Vec<Received> {
        self.received
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so that it sees the flag.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// A free port on 127.0.0.1 that nothing listens on (a server "down").
pub fn free_port() -> u16 {
    let listener = TcpListener::bind(("127.0.0.1", 0)).expect("bind a free port");
    listener.local_addr().expect("its address").port()
}

fn session(stream: TcpStream, received: &Mutex<Vec<Received>>) -> std::io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut out = stream.try_clone()?;
    let mut reader = BufReader::new(stream);
    out.write_all(b"220 127.0.0.1 toosimple test SMTP server ready\r\n")?;
    let mut mail_from = None::<String>;
    let mut rcpt_to = Vec::new();
    let mut line = Vec::new();
    loop {
        line.clear();
        if reader.read_until(b'\n', &mut line)? == 0 {
            return Ok(());
        }
        let text = String::from_utf8_lossy(&line);
        let command = text.trim_end();
        let verb = command
            .split_whitespace()
            .next()
            .unwrap_or("")
            .to_ascii_uppercase();
        match verb.as_str() {
            "EHLO" => {
                out.write_all(b"250-127.0.0.1 greets you\r\n250-8BITMIME\r\n250 SMTPUTF8\r\n")?
            }
            "HELO" => out.write_all(b"250 127.0.0.1\r\n")?,
            "MAIL" => {
                mail_from = Some(angle_address(command));
                rcpt_to.clear();
                out.write_all(b"250 OK\r\n")?;
            }
            "RCPT" => {
                if mail_from.is_none() {
                    out.write_all(b"503 MAIL FROM first\r\n")?;
                } else {
                    rcpt_to.push(angle_address(command));
                    out.write_all(b"250 OK\r\n")?;
                }
            }
            "DATA" => {
                if rcpt_to.is_empty() {
                    out.write_all(b"503 RCPT TO first\r\n")?;
                    continue;
                }
                out.write_all(b"354 end data with <CR><LF>.<CR><LF>\r\n")?;
                let mut data = Vec::new();
                loop {
                    line.clear();
                    if reader.read_until(b'\n', &mut line)? == 0 {
                        return Ok(()); // cut off mid-message: nothing delivered
                    }
                    if line == b".\r\n" {
                        break;
                    }
                    let content = if line.starts_with(b"..") {
                        &line[1..]
                    } else {
                        &line[..]
                    };
                    data.extend_from_slice(content);
                }
                received
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push(Received {
                        mail_from: mail_from.take().unwrap_or_default(),
                        rcpt_to: std::mem::take(&mut rcpt_to),
                        data,
                    });
                out.write_all(b"250 OK queued\r\n")?;
            }
            "RSET" => {
                mail_from = None;
                rcpt_to.clear();
                out.write_all(b"250 OK\r\n")?;
            }
            "NOOP" => out.write_all(b"250 OK\r\n")?,
            "QUIT" => {
                out.write_all(b"221 bye\r\n")?;
                return Ok(());
            }
            _ => out.write_all(b"502 command not implemented\r\n")?,
        }
    }
}

/// The address between `<` and `>` in `MAIL FROM:<a@b> SIZE=…` or `RCPT TO:<a@b>`.
fn angle_address(command: &str) -> String {
    match (command.find('<'), command.find('>')) {
        (Some(start), Some(end)) if start < end => command[start + 1..end].to_string(),
        _ => command
            .split_once(':')
            .map_or("", |(_, a)| a.trim())
            .to_string(),
    }
}
