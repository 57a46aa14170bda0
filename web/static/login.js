// login.js - the login page. The form posts to /login as it is (no script
// needed to log in); this only shows the failure message after a refused
// attempt (the server redirects to /login?error=1) and keeps the email typed,
// so that only the password has to be entered again.

const KEY = 'calderwood.login-email';
const email = document.getElementById('email');
const password = document.getElementById('password');

if (new URLSearchParams(location.search).has('error')) {
    document.getElementById('error').hidden = false;
    let remembered = null;
    try {
        remembered = sessionStorage.getItem(KEY);
    } catch {
        /* storage disabled */
    }
    if (remembered) {
        email.value = remembered;
        password.focus();
    }
    password.setAttribute('aria-invalid', 'true');
    password.setAttribute('aria-describedby', 'error');
}

document.getElementById('login-form').addEventListener('submit', () => {
    try {
        sessionStorage.setItem(KEY, email.value.trim());
    } catch {
        /* storage disabled: the email is typed again */
    }
    document.getElementById('login-submit').disabled = true; // one attempt at a time
});

// Coming back to this page from the history: the button is usable again.
window.addEventListener('pageshow', () => {
    document.getElementById('login-submit').disabled = false;
});
