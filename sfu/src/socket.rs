//! A media worker's UDP socket: binding it, and reading from it with the
//! kernel's receive time.
//!
//! What it is for: [`bind_media_socket`] opens the socket with kernel
//! buffers large enough for bursts of keyframes and asks the kernel to
//! stamp every datagram with its arrival time (`SO_TIMESTAMPNS`);
//! [`recv_stamped`] reads one datagram with `recvmsg` and turns that
//! stamp, a control message parsed here, into how long the datagram
//! waited in the receive queue ([`Received::waited`]). The worker hands
//! that wait to the [`Shedder`](crate::shed::Shedder), which tells a
//! standing queue from a scheduling pause, and gives the core the real
//! arrival time for the senders' bandwidth estimates.
//!
//! What it is not for: deciding anything about the datagrams (the driver
//! and the core do) or sending (the driver's `try_send_to`). Receive
//! timestamps are read on Linux only; elsewhere a read says nothing of the
//! wait, and nothing is shed.
//!
//! The unsafe code here is the `setsockopt` call and the walk over the
//! control buffer; each block says why it is sound.

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use tokio::net::UdpSocket;

/// Largest datagram a worker reads. Anything longer is truncated by the
/// kernel and then rejected by str0m's parsers.
pub(crate) const MAX_DATAGRAM: usize = 2048;

/// Room for the control message that carries the receive timestamp.
pub(crate) const CONTROL_LEN: usize = 64;

/// Kernel buffer size asked for on media sockets: a burst of keyframes
/// for many subscribers must not overrun the default (~200 KB) buffers.
const SOCKET_BUFFER: usize = 4 << 20;

/// Bind a worker's socket at `addr`: non-blocking, with large buffers and
/// receive timestamps (both as far as the kernel allows).
pub(crate) fn bind_media_socket(addr: SocketAddr) -> io::Result<std::net::UdpSocket> {
    let socket = socket2::Socket::new(
        socket2::Domain::for_address(addr),
        socket2::Type::DGRAM,
        Some(socket2::Protocol::UDP),
    )?;
    // The kernel caps these at net.core.{r,w}mem_max; smaller is fine.
    let _ = socket.set_recv_buffer_size(SOCKET_BUFFER);
    let _ = socket.set_send_buffer_size(SOCKET_BUFFER);
    socket.bind(&addr.into())?;
    socket.set_nonblocking(true)?;
    enable_rx_timestamps(&socket);
    Ok(socket.into())
}

/// A datagram read from a worker socket.
pub(crate) struct Received {
    /// Its length: it is the first `len` bytes of the buffer read into.
    pub len: usize,
    /// Who sent it.
    pub source: SocketAddr,
    /// How long it waited in the kernel's receive queue, when the kernel
    /// says (SO_TIMESTAMPNS on Linux).
    pub waited: Option<Duration>,
}

/// Ask the kernel to stamp every datagram with its arrival time.
#[cfg(target_os = "linux")]
fn enable_rx_timestamps(socket: &socket2::Socket) {
    use std::os::fd::AsRawFd;
    let on: libc::c_int = 1;
    // SAFETY: a valid socket descriptor and a c_int option value of the
    // size passed.
    let r = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_TIMESTAMPNS,
            (&on as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if r != 0 {
        tracing::warn!(error = %io::Error::last_os_error(), "no receive timestamps: stale input is not shed");
    }
}

#[cfg(not(target_os = "linux"))]
fn enable_rx_timestamps(_socket: &socket2::Socket) {}

/// Read one datagram into `buf` without waiting (`WouldBlock` if none is
/// queued); `control` receives the kernel's control messages.
#[cfg(target_os = "linux")]
pub(crate) fn recv_stamped(
    socket: &UdpSocket,
    buf: &mut [u8],
    control: &mut [u8; CONTROL_LEN],
) -> io::Result<Received> {
    use std::mem::MaybeUninit;
    socket.try_io(tokio::io::Interest::READABLE, || {
        let sock = socket2::SockRef::from(socket);
        let mut addr = socket2::SockAddr::from(SocketAddr::from(([0, 0, 0, 0], 0)));
        // SAFETY: `&mut [u8]` and `&mut [MaybeUninit<u8>]` have the same
        // layout, and recvmsg only writes initialised bytes into them.
        let data = unsafe { &mut *(buf as *mut [u8] as *mut [MaybeUninit<u8>]) };
        let ctrl = unsafe { &mut *(&mut control[..] as *mut [u8] as *mut [MaybeUninit<u8>]) };
        let mut bufs = [socket2::MaybeUninitSlice::new(data)];
        let mut msg = socket2::MsgHdrMut::new()
            .with_addr(&mut addr)
            .with_buffers(&mut bufs)
            .with_control(ctrl);
        let len = sock.recvmsg(&mut msg, 0)?;
        let control_len = msg.control_len();
        let source = addr.as_socket().ok_or_else(|| {
            io::Error::new(io::ErrorKind::InvalidData, "datagram from a non-IP address")
        })?;
        let waited = rx_timestamp(&control[..control_len]).map(|at| {
            std::time::SystemTime::now()
                .duration_since(at)
                .unwrap_or_default()
        });
        Ok(Received {
            len,
            source,
            waited,
        })
    })
}

#[cfg(not(target_os = "linux"))]
pub(crate) fn recv_stamped(
    socket: &UdpSocket,
    buf: &mut [u8],
    _control: &mut [u8; CONTROL_LEN],
) -> io::Result<Received> {
    let (len, source) = socket.try_recv_from(buf)?;
    Ok(Received {
        len,
        source,
        waited: None,
    })
}

/// The SCM_TIMESTAMPNS time in a control buffer filled by recvmsg.
#[cfg(target_os = "linux")]
fn rx_timestamp(control: &[u8]) -> Option<std::time::SystemTime> {
    // Walk the cmsghdr chain by hand (header: length, level, type; data
    // aligned to the header's alignment), reading unaligned.
    let header = std::mem::size_of::<libc::cmsghdr>();
    let align = std::mem::align_of::<libc::cmsghdr>();
    let mut at = 0;
    while at + header <= control.len() {
        // SAFETY: `at + header` bytes are in bounds; read_unaligned copies.
        let h: libc::cmsghdr = unsafe { std::ptr::read_unaligned(control[at..].as_ptr().cast()) };
        let len = h.cmsg_len as usize;
        if len < header || at + len > control.len() {
            return None;
        }
        let data = at + header.next_multiple_of(align);
        if h.cmsg_level == libc::SOL_SOCKET
            && h.cmsg_type == libc::SO_TIMESTAMPNS
            && data + std::mem::size_of::<libc::timespec>() <= at + len
        {
            // SAFETY: in bounds (checked above); read_unaligned copies.
            let ts: libc::timespec =
                unsafe { std::ptr::read_unaligned(control[data..].as_ptr().cast()) };
            let secs = u64::try_from(ts.tv_sec).ok()?;
            let nanos = u32::try_from(ts.tv_nsec).ok()?;
            return Some(std::time::UNIX_EPOCH + Duration::new(secs, nanos));
        }
        at += len.next_multiple_of(align);
    }
    None
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    #[test]
    fn a_datagram_read_from_the_socket_says_how_long_it_waited() {
        let std_socket = bind_media_socket("127.0.0.1:0".parse().unwrap()).unwrap();
        let addr = std_socket.local_addr().unwrap();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            let socket = UdpSocket::from_std(std_socket).unwrap();
            let peer = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
            peer.send_to(b"\x80hello", addr).unwrap();
            socket.readable().await.unwrap();
            let (mut buf, mut control) = ([0u8; 64], [0u8; CONTROL_LEN]);
            let got = recv_stamped(&socket, &mut buf, &mut control).unwrap();
            assert_eq!(&buf[..got.len], b"\x80hello");
            assert_eq!(got.source, peer.local_addr().unwrap());
            assert!(got.waited.is_some(), "the kernel stamped its arrival");
        });
    }
}
