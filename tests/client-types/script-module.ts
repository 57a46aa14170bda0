// How a page's <script type="module"> (or a module file under /static/)
// imports it: by the file's path, with the declarations beside it.
import { Calderwood } from '../../web/static/calderwood.js';

const cw = new Calderwood();
cw.addEventListener('command', (e) => console.log(e.detail.command.state));
cw.connect();
