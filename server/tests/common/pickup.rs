//! The recipient's side of the pickup pages, step by step as a browser without script does it:
//! a one-time code by email, verifying it, opening with the link secret, downloading. Each
//! step asserts its own success, so a test that only needs "this delivery opens" calls
//! [`App::pick_up`] and asserts what is specific to it.

use super::app::App;
use super::http::{Reply, attachments};
use super::outbox::PickupLink;

/// A message opened through the pickup flow, as its recipient.
#[derive(Debug)]
pub struct Opened {
    pub link: PickupLink,
    /// The verified session cookie (`name=value`).
    pub cookie: String,
    /// The opened message's page (status 200).
    pub page: Reply,
}

/// A message opened and every attachment on its page downloaded.
#[derive(Debug)]
pub struct PickedUp {
    pub opened: Opened,
    /// The visible text of the message page.
    pub text: String,
    /// Every attachment, in page order: `(file name, bytes)`.
    pub files: Vec<(String, Vec<u8>)>,
}

impl PickedUp {
    /// The attachment names, in page order.
    pub fn names(&self) -> Vec<&str> {
        self.files.iter().map(|(name, _)| name.as_str()).collect()
    }

    /// The bytes of the attachment called `name`; panics if the page lists none.
    pub fn file(&self, name: &str) -> &[u8] {
        self.files
            .iter()
            .find_map(|(n, bytes)| (n == name).then_some(bytes.as_slice()))
            .unwrap_or_else(|| panic!("no attachment {name:?} among {:?}", self.names()))
    }
}

impl App {
    /// Ask for a one-time code for `link`, read it from the outbox, verify it; returns the
    /// session cookie (`name=value`).
    pub fn verify_by_code(&self, link: &PickupLink, address: &str) -> String {
        let before = self.outbox().len();
        let reply = self.post_form(&format!("/p/{}/code", link.pickup_id), &[], None);
        assert_eq!(reply.status, 200, "POST code: {}", reply.page_text());
        let outbox = self.outbox();
        assert_eq!(
            outbox.len(),
            before + 1,
            "POST /code answered 200 but did not put exactly one mail in the outbox"
        );
        let code = self.last_mail_to(address).code();
        let reply = self.post_form(
            &format!("/p/{}/verify", link.pickup_id),
            &[("code", &code)],
            None,
        );
        assert_eq!(reply.status, 200, "POST verify: {}", reply.page_text());
        reply
            .session_cookie()
            .expect("a successful verification sets a session cookie")
    }

    /// The whole pickup flow for `link`: a code by email, verify it, open with the link
    /// secret. Panics unless the message opens.
    pub fn open_link(&self, link: &PickupLink, address: &str) -> Opened {
        let cookie = self.verify_by_code(link, address);
        let page = self.post_form(
            &format!("/p/{}/open", link.pickup_id),
            &[("k", &link.secret)],
            Some(&cookie),
        );
        assert_eq!(
            page.status,
            200,
            "open {} for {address}: {}",
            link.pickup_id,
            page.page_text()
        );
        Opened {
            link: link.clone(),
            cookie,
            page,
        }
    }

    /// Download attachment `part_no` of an opened message (the reply, whatever its status).
    pub fn download(&self, opened: &Opened, part_no: u32) -> Reply {
        self.post_form(
            &format!("/p/{}/attachments/{part_no}", opened.link.pickup_id),
            &[("k", &opened.link.secret)],
            Some(&opened.cookie),
        )
    }

    /// [`App::open_link`], then download every attachment the page lists (each must answer
    /// 200).
    pub fn pick_up(&self, link: &PickupLink, address: &str) -> PickedUp {
        let opened = self.open_link(link, address);
        let mut files = Vec::new();
        for (part_no, name) in attachments(&opened.page) {
            let file = self.download(&opened, part_no);
            assert_eq!(file.status, 200, "download {name}: {}", file.text());
            files.push((name, file.body));
        }
        PickedUp {
            text: opened.page.page_text(),
            opened,
            files,
        }
    }
}
