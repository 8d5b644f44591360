# Русский: язык портала по умолчанию.
site-name = ortaq — интегрированная информационная система ЕАЭС
skip-to-content = Перейти к содержанию
nav-main = Основная навигация
nav-home = Узел
nav-nsi = НСИ
nav-api = API
language = Язык
node-title = Узел { $segment }
node-intro = Узел интегрированной информационной системы Евразийского экономического союза: принимает электронные документы информационных систем уполномоченных органов, подписывает их и доставляет в другие государства по защищённым каналам.
participants-title = Участники узла
participants-none = У узла нет участников.
participant-address = Логический адрес
participant-name = Наименование
nsi-title = Нормативно-справочная информация
nsi-intro = Справочники и классификаторы, которые хранит этот узел, в последней версии.
nsi-none = Узел пока не хранит ни одного справочника.
nsi-code = Код
nsi-name = Наименование
nsi-version = Версия
nsi-published = Опубликована
nsi-items = Записей
nsi-items-count = { $count ->
    [one] { $n } запись
    [few] { $n } записи
   *[many] { $n } записей
}
nsi-kind-resource = справочник
nsi-kind-crosswalk = таблица соответствия
item-code = Код
item-name = Наименование
item-other-names = На других языках
item-valid = Действует
item-valid-from = с { $from }
item-valid-to = по { $to }
search-label = Поиск по коду или наименованию
search-button = Найти
search-found = { $count ->
    [one] Найдена { $n } запись
    [few] Найдено { $n } записи
   *[many] Найдено { $n } записей
}
page-prev = Предыдущая
page-next = Следующая
page-of = Страница { $page } из { $pages }
not-found-title = Страница не найдена
not-found-text = Такой страницы здесь нет. Проверьте адрес или начните с главной страницы узла.
unavailable-title = Данные временно недоступны
unavailable-text = Узел не смог прочитать данные. Повторите попытку позже.
api-link = Описание API (OpenAPI)
nav-signin = Войти
signout-button = Выйти
signin-title = Вход
signin-intro = Для сотрудников органов власти, Комиссии, операторов узла и предпринимателей, зарегистрированных на этом узле. Для чтения страниц учётная запись не нужна.
signin-login = Логин
signin-password = Пароль
signin-button = Войти
signin-refused = Неверный логин или пароль.
signin-locked = Слишком много неверных паролей: учётная запись заблокирована до { $time }. Повторите попытку позже или обратитесь к оператору узла.
form-expired-title = Форма устарела
form-expired-text = Страница, с которой отправлена форма, устарела или принадлежит другому сайту. Откройте страницу заново и отправьте форму ещё раз.
account-title = Ваша учётная запись
account-name = Имя
account-login = Логин
account-roles = Роли
account-session = Сеанс
account-session-until = до { $day }, { $time }
role-operator = Оператор узла
role-analyst = Аналитик Комиссии
role-officer = Сотрудник органа власти
role-business = Предприниматель
signin-elsewhere = Зарегистрированы на узле другого государства?
signin-elsewhere-intro = Войдите на своём узле: он сообщит этому узлу, кто вы. Ваш пароль сюда не передаётся.
signin-via = Войти через узел { $segment }
oidc-unknown-client-title = Неизвестный узел
oidc-unknown-client-text = Сайт, направивший вас сюда, не указан в доверенном списке федерации или просит вернуть вас по другому адресу. Ему ничего не передано.
oidc-not-ours-title = Войдите с учётной записью этого узла
oidc-not-ours-text = Вы вошли сюда через другой узел. Узел подтверждает только своих пользователей: войдите на другой сайт через свой узел.
oidc-failed-title = Вход через другой узел не завершён
oidc-failed-text = Ответ другого узла не удалось проверить или вход занял слишком много времени. Начните заново со страницы входа.
